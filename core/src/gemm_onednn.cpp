// cpu_gemm.h through oneDNN's matmul primitive. Primitives are built per (shape, strides) and kept per thread (each
// engine thread runs its own single-threaded products); the weights stay in the caller's plain row-major layout,
// which oneDNN's AMX/AVX-512 kernels pack per call (one read of the block, amortised over the M rows of the GEMM;
// measured 943 vs 1056 GFLOP/s for weights packed once ahead, bf16, M 256: not worth a second copy of the model).
// oneDNN threads with OpenMP here (Debian's build): each call holds the calling thread's OpenMP team at one thread.
#include "aviary/core/cpu_gemm.h"

#include <dlfcn.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <cstring>
#include <map>
#include <unordered_map>
#include <tuple>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/error.h"

#ifdef AVIARY_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace aviary::cpu {

namespace {
void round_to_bf16_generic(const float* x, int64_t n, uint16_t* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// VCVTNEPS2BF16: the same round-to-nearest-even; it treats denormal inputs (|x| < 2⁻¹²⁶) as zero, the only
// difference from fp32_to_bf16.
__attribute__((target("avx512f,avx512vl,avx512bf16"))) void round_to_bf16_avx512bf16(const float* x, int64_t n,
                                                                                     uint16_t* out) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        std::memcpy(out + i, &h, sizeof h);
    }
    for (; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}
#endif
}  // namespace

void round_to_bf16(const float* x, int64_t n, uint16_t* out) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    static const bool native = cpu_info().avx512_bf16;
    if (native) return round_to_bf16_avx512bf16(x, n, out);
#endif
    round_to_bf16_generic(x, n, out);
}

#ifdef AVIARY_HAVE_DNNL
namespace {

const char* isa_name(dnnl::cpu_isa isa) {
    switch (isa) {
        case dnnl::cpu_isa::sse41:
            return "sse41";
        case dnnl::cpu_isa::avx:
            return "avx";
        case dnnl::cpu_isa::avx2:
            return "avx2";
        case dnnl::cpu_isa::avx2_vnni:
            return "avx2_vnni";
        case dnnl::cpu_isa::avx512_core:
            return "avx512_core";
        case dnnl::cpu_isa::avx512_core_vnni:
            return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core_bf16:
            return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_amx:
            return "avx512_core_amx";
        default:
            return "other";
    }
}

dnnl::engine& cpu_engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

// The calling thread's OpenMP team size held at 1 while a product runs (oneDNN's OpenMP build asks
// omp_get_max_threads(); the engine's pool threads would otherwise each open a team of all cores).
struct OmpOneThread {
    using Get = int (*)();
    using Set = void (*)(int);
    static Get get() {
        static const Get fn = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
        return fn;
    }
    static Set set() {
        static const Set fn = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
        return fn;
    }
    int saved = 1;
    OmpOneThread() {
        if (get() && set()) {
            saved = get()();
            if (saved != 1) set()(1);
        }
    }
    ~OmpOneThread() {
        if (saved != 1 && set()) set()(saved);
    }
};

using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t>;  // type, M, N, K, ldx, ldy

struct ThreadPrims {
    dnnl::stream stream{cpu_engine()};
    std::map<Key, dnnl::matmul> prims;
};

ThreadPrims& thread_prims() {
    thread_local ThreadPrims p;
    return p;
}

dnnl::matmul& matmul_for(int type, int64_t M, int64_t N, int64_t K, int64_t ldx, int64_t ldy) {
    using dt = dnnl::memory::data_type;
    ThreadPrims& tp = thread_prims();
    const Key key{type, M, N, K, ldx, ldy};
    auto it = tp.prims.find(key);
    if (it != tp.prims.end()) return it->second;
    const dt in = type == 0 ? dt::bf16 : type == 1 ? dt::s8 : dt::f32;
    const dnnl::memory::desc src({M, K}, in, dnnl::memory::dims{ldx, 1});
    const dnnl::memory::desc wei({K, N}, in, dnnl::memory::dims{1, K});  // W (N, K) row-major, read as Wᵀ
    const dnnl::memory::desc dst({M, N}, dt::f32, dnnl::memory::dims{ldy, 1});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, dst), cpu_engine());
    if (tp.prims.size() > 256) tp.prims.clear();  // shapes come from a few chunk sizes; bound it anyway
    return tp.prims.emplace(key, dnnl::matmul(pd)).first->second;
}

void run(int type, const void* X, int64_t M, int64_t K, int64_t ldx, const void* W, int64_t N, float* Y, int64_t ldy) {
    AVIARY_CHECK(M > 0 && N > 0 && K > 0 && ldx >= K && ldy >= N, "internal: bad GEMM shape M ", M, " N ", N, " K ", K,
                 " ldx ", ldx, " ldy ", ldy);
    const OmpOneThread one;
    using dt = dnnl::memory::data_type;
    const dt in = type == 0 ? dt::bf16 : type == 1 ? dt::s8 : dt::f32;
    dnnl::matmul& mm = matmul_for(type, M, N, K, ldx, ldy);
    dnnl::engine& e = cpu_engine();
    dnnl::memory src({{M, K}, in, dnnl::memory::dims{ldx, 1}}, e, const_cast<void*>(X));
    dnnl::memory wei({{K, N}, in, dnnl::memory::dims{1, K}}, e, const_cast<void*>(W));
    dnnl::memory dst({{M, N}, dt::f32, dnnl::memory::dims{ldy, 1}}, e, Y);
    const std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    ThreadPrims& tp = thread_prims();
    mm.execute(tp.stream, args);
    tp.stream.wait();
}

}  // namespace

const OneDnnInfo& onednn_info() {
    static const OneDnnInfo info = [] {
        OneDnnInfo i;
        i.available = true;
        const dnnl_version_t* v = dnnl_version();
        i.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
        const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
        i.isa = isa_name(isa);
        i.bf16_matmul = isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
        i.bf16_amx = isa == dnnl::cpu_isa::avx512_core_amx;
        i.int8_matmul = isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
                        isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
        i.bf16_supported = i.bf16_matmul || isa == dnnl::cpu_isa::avx512_core || isa == dnnl::cpu_isa::avx512_core_vnni;
        i.int8_supported = i.int8_matmul;
        return i;
    }();
    return info;
}

void gemm_bf16_onednn(const uint16_t* X, int64_t M, int64_t K, int64_t ldx, const uint16_t* W, int64_t N, float* Y,
                      int64_t ldy) {
    AVIARY_CHECK(onednn_info().bf16_supported, "oneDNN ", onednn_info().version, " has no bf16 matmul for ISA ",
                 onednn_info().isa, " (needs AVX-512)");
    run(0, X, M, K, ldx, W, N, Y, ldy);
}

void gemm_int8_onednn(const int8_t* X, int64_t M, int64_t K, int64_t ldx, const int8_t* W, int64_t N, float* Y,
                      int64_t ldy) {
    AVIARY_CHECK(onednn_info().int8_supported,
                 "oneDNN's int8 matmul needs VNNI or AMX-INT8 for exact sums (ISA here: ", onednn_info().isa, ")");
    run(1, X, M, K, ldx, W, N, Y, ldy);
}

void gemm_f32_onednn(const float* X, int64_t M, int64_t K, int64_t ldx, const float* W, int64_t N, float* Y,
                     int64_t ldy) {
    run(2, X, M, K, ldx, W, N, Y, ldy);
}

#else  // built without oneDNN

const OneDnnInfo& onednn_info() {
    static const OneDnnInfo info;
    return info;
}
void gemm_bf16_onednn(const uint16_t*, int64_t, int64_t, int64_t, const uint16_t*, int64_t, float*, int64_t) {
    AVIARY_CHECK(false, "this build has no oneDNN (install libdnnl-dev and rebuild)");
}
void gemm_int8_onednn(const int8_t*, int64_t, int64_t, int64_t, const int8_t*, int64_t, float*, int64_t) {
    AVIARY_CHECK(false, "this build has no oneDNN (install libdnnl-dev and rebuild)");
}
void gemm_f32_onednn(const float*, int64_t, int64_t, int64_t, const float*, int64_t, float*, int64_t) {
    AVIARY_CHECK(false, "this build has no oneDNN (install libdnnl-dev and rebuild)");
}

#endif

}  // namespace aviary::cpu
