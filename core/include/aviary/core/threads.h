// Thread settings for the CPU path: one place that sets LibTorch's intra-op threads, its inter-op pool
// and OpenBLAS's own pool together, so that OpenMP and OpenBLAS threads do not oversubscribe the cores.
#pragma once
#include <cstdint>
#include <functional>

namespace aviary {

// Number of threads used when the user does not choose: $AVIARY_THREADS, else the number of cores.
int default_thread_count();
// Gives the OpenBLAS pool n threads (n <= 0 means default_thread_count()) and LibTorch's element-wise ops one
// (measured: two OpenMP workers spinning beside OpenBLAS's pool slow decode 3-12x on 2 cores; see threads.cpp).
void set_thread_count(int n);
// The BLAS thread count (the number that matters for the matrix products).
int thread_count();
// Runs fn(begin, end) over [0, n) in contiguous shares, one per LibTorch intra-op (OpenMP) thread: more than one inside
// TorchThreadsScope (bf16 training), one where set_thread_count() gives the cores to OpenBLAS (fp32), thread_count()
// inside SharesBesideBlasScope (fp32 training whose idle workers sleep, below). at::parallel_for is a header template
// that runs serially in a file built without OpenMP; this one is built with it (GCC; serial with Clang). For loops
// over independent items (the CPU WKV's heads, the fused ops' row blocks); returns the number of shares it ran.
int parallel_for_shares(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

// fp32 CPU training alternates OpenBLAS's products with LibTorch's element-wise ops and the CPU WKV (OpenMP). Both
// runtimes keep idle workers spinning by default (libgomp's for ~300 000 spins, OpenBLAS's for up to 2^28 cycles), so
// OpenMP threads beside OpenBLAS's would take the cores its next product needs. Started with OMP_WAIT_POLICY=passive
// and OPENBLAS_THREAD_TIMEOUT=4 (both read only while the libraries initialise; ensure_start_up_env, blas_core.h,
// sets them for fp32 `train` and `research` runs), idle workers sleep at once and both pools can run on every core.
// True when this process has both (whoever set them).
bool thread_pools_sleep_when_idle();
// The two settings.
struct EnvSetting {
    const char* name;
    const char* value;
};
extern const EnvSetting kIdleWorkersSleepEnv[2];

// Row-major single-precision GEMM through the cblas_sgemm of the BLAS LibTorch itself loaded (looked up at run
// time), or nullptr when that BLAS has no C interface: C (M, N; ldc) = A (M, K; lda) · op(B), op(B) = Bᵀ for a
// row-major B (N, K; ldb) when trans_b, else B (K, N; ldb); beta = 0.
using SgemmRowMajorFn = void (*)(bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                                 float* c, int ldc);
SgemmRowMajorFn blas_sgemm_row_major();

// While alive, OpenBLAS runs one thread (its count restored afterwards; with another BLAS it does nothing), so that
// a caller's threads can each run single-threaded GEMMs on their share of a product without the BLAS workers
// competing for the cores.
class BlasSingleThreadScope {
public:
    BlasSingleThreadScope();
    ~BlasSingleThreadScope();
    BlasSingleThreadScope(const BlasSingleThreadScope&) = delete;
    BlasSingleThreadScope& operator=(const BlasSingleThreadScope&) = delete;
    int saved() const { return saved_; }  // the BLAS's thread count before (0 without OpenBLAS)

private:
    int saved_ = 0;
};

// While alive, LibTorch's intra-op (OpenMP) pool runs thread_count() threads and OpenBLAS one: for work whose
// matrix products LibTorch sends to oneDNN (bf16 matmuls and autocast regions: the CLIP tower, bf16 training), which
// would otherwise run on the single intra-op thread that set_thread_count() leaves LibTorch. Both counts are restored
// afterwards. Not reentrant across threads: use it on the thread that runs the LibTorch ops.
class TorchThreadsScope {
public:
    TorchThreadsScope();
    ~TorchThreadsScope();
    TorchThreadsScope(const TorchThreadsScope&) = delete;
    TorchThreadsScope& operator=(const TorchThreadsScope&) = delete;

private:
    int saved_intra_ = 1;
    BlasSingleThreadScope blas_one_;
};

// While alive (on this thread), parallel_for_shares splits its loops over thread_count() OpenMP threads although
// LibTorch's intra-op pool keeps the one set_thread_count() gives it: fp32 training steps where
// thread_pools_sleep_when_idle(), so that the CPU WKV and the fused element-wise ops use every core between OpenBLAS's
// products, while LibTorch's own small ops stay on one thread (each parallel region would wake a sleeping worker).
class SharesBesideBlasScope {
public:
    SharesBesideBlasScope();
    ~SharesBesideBlasScope();
    SharesBesideBlasScope(const SharesBesideBlasScope&) = delete;
    SharesBesideBlasScope& operator=(const SharesBesideBlasScope&) = delete;

private:
    int saved_ = 0;
};

}  // namespace aviary
