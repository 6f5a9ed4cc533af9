// Thread settings (see threads.h). OpenBLAS keeps its own pthread pool beside LibTorch's OpenMP pool;
// its setter is looked up at run time so the build does not depend on which BLAS Debian selected.
#include "aviary/core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

namespace aviary {

int default_thread_count() {
    if (const char* env = std::getenv("AVIARY_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

namespace {
// OpenBLAS's thread-count functions, looked up once at run time (absent with another BLAS: then null).
struct OpenBlasThreads {
    int (*get)() = nullptr;
    void (*set)(int) = nullptr;
};
const OpenBlasThreads& openblas_threads() {
    static const OpenBlasThreads fns{reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")),
                                     reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))};
    return fns;
}
}  // namespace

void set_thread_count(int n) {
    if (n <= 0) n = default_thread_count();
    // Measured on the 2-core CI machines (docs/BENCHMARKS.md, "Threads"): with LibTorch's OpenMP pool at 2 threads
    // beside OpenBLAS's own pool at 2, the spinning OpenMP workers starve the BLAS threads and 0.1B decode drops
    // from ~10 to ~1–3 tok/s (prefill 218 -> 84 tok/s). So the GEMMs get the n threads (OpenBLAS) and the
    // element-wise ops run on one; AVIARY_INTRAOP_THREADS overrides the latter for experiments.
    int intra = 1;
    if (const char* env = std::getenv("AVIARY_INTRAOP_THREADS")) intra = std::max(1, std::atoi(env));
    at::set_num_threads(intra);
    if (openblas_threads().set) openblas_threads().set(n);
}

int thread_count() {
    if (openblas_threads().get) return openblas_threads().get();
    return at::get_num_threads();
}

namespace {
thread_local int shares_beside_blas = 0;  // > 0 inside SharesBesideBlasScope: its thread count
}  // namespace

// at::parallel_for is a header template over OpenMP: this file is built with -fopenmp (core/CMakeLists.txt), without
// which it would run the whole range on the caller.
int parallel_for_shares(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return 0;
    std::atomic<int> shares{0};
#ifdef _OPENMP
    const bool own_threads = shares_beside_blas > 1 && at::get_num_threads() == 1;
#else
    const bool own_threads = false;  // built without OpenMP (Clang): LibTorch's split, serial here
#endif
    if (!own_threads) {
        at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
            shares.fetch_add(1);
            fn(b, e);
        });
        return shares.load();
    }
#ifdef _OPENMP
    // beside OpenBLAS's pool, on OpenMP threads of this call's own (LibTorch's ops keep their one)
    const int k = static_cast<int>(std::min<int64_t>(shares_beside_blas, n));
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel num_threads(k)
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t b = n * t / nt, e = n * (t + 1) / nt;
        if (b < e) {
            shares.fetch_add(1);
            try {
                fn(b, e);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
            }
        }
    }
    if (error) std::rethrow_exception(error);
#endif
    return shares.load();
}

SharesBesideBlasScope::SharesBesideBlasScope() : saved_(shares_beside_blas) {
    shares_beside_blas = std::max(thread_count(), 1);
}

SharesBesideBlasScope::~SharesBesideBlasScope() {
    shares_beside_blas = saved_;
}

const EnvSetting kIdleWorkersSleepEnv[2] = {{"OMP_WAIT_POLICY", "passive"}, {"OPENBLAS_THREAD_TIMEOUT", "4"}};

bool thread_pools_sleep_when_idle() {
    for (const EnvSetting& setting : kIdleWorkersSleepEnv) {
        const char* v = std::getenv(setting.name);
        if (!v || strcasecmp(v, setting.value) != 0) return false;  // libgomp reads the policy case-insensitively
    }
    return true;
}

namespace {
// CBLAS's enum values (cblas.h): fixed by the standard interface, so no header is needed.
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
CblasSgemm cblas_sgemm_fn() {
    static const CblasSgemm fn = reinterpret_cast<CblasSgemm>(dlsym(RTLD_DEFAULT, "cblas_sgemm"));
    return fn;
}
void sgemm_row_major(bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
                     int ldc) {
    cblas_sgemm_fn()(kCblasRowMajor, kCblasNoTrans, trans_b ? kCblasTrans : kCblasNoTrans, m, n, k, 1.0f, a, lda, b,
                     ldb, 0.0f, c, ldc);
}
}  // namespace

SgemmRowMajorFn blas_sgemm_row_major() {
    return cblas_sgemm_fn() ? &sgemm_row_major : nullptr;
}

BlasSingleThreadScope::BlasSingleThreadScope() {
    const OpenBlasThreads& ob = openblas_threads();
    if (ob.get && ob.set) {
        saved_ = ob.get();
        if (saved_ != 1) ob.set(1);
    }
}

BlasSingleThreadScope::~BlasSingleThreadScope() {
    if (saved_ > 1) openblas_threads().set(saved_);
}

namespace {
// The calling thread's OpenMP team size, which is what LibTorch's intra-op loops and oneDNN ask. Not through
// at::set_num_threads: that also rebuilds LibTorch's pthreadpool (XNNPACK's, unused here) at every call, and the
// new pool's worker spins for milliseconds on one of the cores the step's two OpenMP threads need — once per scope,
// 10–30 % of a bf16 training step on 2 cores (docs/BENCHMARKS.md, sixth session on the Zen 4 class).
void set_team_size(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    at::set_num_threads(n);
#endif
}
}  // namespace

TorchThreadsScope::TorchThreadsScope() : saved_intra_(at::get_num_threads()) {
    // The BLAS's count is the one set_thread_count() gave; inside another scope it is already 1 and LibTorch holds it.
    const int n = std::max({blas_one_.saved(), saved_intra_, 1});
    if (n != saved_intra_) set_team_size(n);
}

TorchThreadsScope::~TorchThreadsScope() {
    if (at::get_num_threads() != saved_intra_) set_team_size(saved_intra_);
}

}  // namespace aviary
