// The SIMD matrix-vector kernel body shared by matvec_avx2.cpp (32-byte vectors) and matvec_avx512.cpp (64-byte
// vectors): not compiled on its own, each of those files defines AVIARY_VEC_BYTES and AVIARY_SIMD_NS and includes
// it, with its own -m flags. Written with GCC/Clang vector extensions so that both widths are the same source (the
// 64-byte layout is also built for AVX2 alone by tests/core/matvec_vec64_twin.cpp, so an AVX2-only machine tests it
// against the scalar reference, matvec_scalar.cpp). Weights stream once per call: for batch 1 four rows share each
// load of x; for batch > 1 each loaded weight vector is used for up to eight x vectors. fp32 and bf16 weights
// accumulate in fp32 (bf16 is widened by a 16-bit shift, using the <immintrin.h> widening load of each width, which
// GCC does not derive from vector conversions); int8 weights run on integers (the section "int8 weights" below).
#ifndef AVIARY_VEC_BYTES
#error "define AVIARY_VEC_BYTES and AVIARY_SIMD_NS before including matvec_simd_body.cpp"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"

namespace aviary::cpu::AVIARY_SIMD_NS {
namespace {

constexpr int kLanes = AVIARY_VEC_BYTES / 4;
using VecF = float __attribute__((vector_size(AVIARY_VEC_BYTES)));
using VecU32 = uint32_t __attribute__((vector_size(AVIARY_VEC_BYTES)));
// Unaligned, aliasing views of memory for the loads.
using VecFMem = float __attribute__((vector_size(AVIARY_VEC_BYTES), aligned(4), may_alias));

inline VecF load_x(const float* p) {
    return *reinterpret_cast<const VecFMem*>(p);
}

#if AVIARY_VEC_BYTES == 64 && !defined(__AVX512F__)
// Two 32-byte registers as one 64-byte vector (lanes 0-7 from lo, 8-15 from hi).
template <class V>
inline V join_halves(__m256i lo, __m256i hi) {
    V v;
    std::memcpy(&v, &lo, sizeof lo);
    std::memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
    return v;
}
#endif

// fp32 and bf16 only: int8 matrices take the integer path (matvec_i8).
template <WeightType T>
inline VecF load_w(const void* base, int64_t i) {
    static_assert(T != WeightType::I8, "int8 weights use matvec_i8");
    if constexpr (T == WeightType::F32) {
        return *reinterpret_cast<const VecFMem*>(static_cast<const float*>(base) + i);
    } else if constexpr (T == WeightType::BF16) {
        // bf16 bits in the high half of an fp32 word: zero-extending load (vpmovzxwd), shift left by 16
        const uint16_t* p = static_cast<const uint16_t*>(base) + i;
#if AVIARY_VEC_BYTES == 64 && defined(__AVX512F__)
        // (the zero-masked form: GCC 12 warns that the plain one's undefined pass-through may be uninitialised)
        const VecU32 wide = reinterpret_cast<VecU32>(
            _mm512_maskz_cvtepu16_epi32(__mmask16(0xFFFF), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif AVIARY_VEC_BYTES == 64
        // The 64-byte layout built without AVX-512 (the test twin, tests/core/matvec_vec64_twin.cpp): two halves.
        const VecU32 wide = join_halves<VecU32>(
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8))));
#else
        const VecU32 wide =
            reinterpret_cast<VecU32>(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#endif
        return reinterpret_cast<VecF>(wide << 16);
    }
}

template <WeightType T>
inline float load_w1(const void* base, int64_t i) {
    if constexpr (T == WeightType::F32) {
        return static_cast<const float*>(base)[i];
    } else {
        return bf16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    }
}

// The lanes' sum as a tree, halves first: lanes i and i + kLanes/2, then i and i + kLanes/4, ... (the same order in
// every kernel of a width, so batch 1 and the batched passes agree bit for bit; fp32 addition is commutative).
using VecF8 = float __attribute__((vector_size(32)));
using VecF4 = float __attribute__((vector_size(16)));
using VecF2 = float __attribute__((vector_size(8)));
inline float hsum8(VecF8 a) {
    const VecF4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    const VecF2 c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
    return c[0] + c[1];
}
inline float hsum(VecF v) {
#if AVIARY_VEC_BYTES == 64
    return hsum8(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
#else
    return hsum8(v);
#endif
}

// out[j] = hsum(v[j]) for j < n, the same tree for 16 vectors at once where the width is 16 lanes: each level adds
// the two halves of every group of lanes with two-source shuffles, packing two vectors' partial sums into one.
inline void hsum_many(const VecF* v, int n, float* out) {
#if AVIARY_VEC_BYTES == 64 && defined(__AVX512F__)
    for (int j0 = 0; j0 < n; j0 += 16) {
        VecF t[8], u[4], w[2];
        auto in = [&](int j) { return j0 + j < n ? v[j0 + j] : VecF{}; };
        for (int j = 0; j < 8; ++j) {
            const VecF a = in(2 * j), b = in(2 * j + 1);
            t[j] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                   __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
        }
        for (int j = 0; j < 4; ++j)
            u[j] = __builtin_shufflevector(t[2 * j], t[2 * j + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25,
                                           26, 27) +
                   __builtin_shufflevector(t[2 * j], t[2 * j + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29,
                                           30, 31);
        for (int j = 0; j < 2; ++j)
            w[j] = __builtin_shufflevector(u[2 * j], u[2 * j + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25,
                                           28, 29) +
                   __builtin_shufflevector(u[2 * j], u[2 * j + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27,
                                           30, 31);
        const VecF z =
            __builtin_shufflevector(w[0], w[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
            __builtin_shufflevector(w[0], w[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for (int j = 0; j < 16 && j0 + j < n; ++j) out[j0 + j] = z[j];
    }
#else
    for (int j = 0; j < n; ++j) out[j] = hsum(v[j]);
#endif
}

template <WeightType T>
constexpr int64_t kWeightBytes = T == WeightType::F32 ? 4 : T == WeightType::BF16 ? 2 : 1;

#ifndef AVIARY_PREFETCH_BYTES
#define AVIARY_PREFETCH_BYTES 8192
#endif
constexpr int64_t kPrefetchBytes = AVIARY_PREFETCH_BYTES;

// Batch-1 kernels read four consecutive rows together: four short streams (768 int8 weights are 12 cache lines),
// too short for the hardware prefetcher to lock on to. So while a kernel reads one 4-row block (block_bytes,
// contiguous) it prefetches a later block, the first one at least kPrefetchBytes ahead: prefetch_distance() is that
// offset, and prefetch_step<Bytes>() requests the Bytes the current step consumes at that distance, one cache line per
// 64 bytes (a step under 64 bytes only when it starts a line), never at or past `end`.
inline int64_t prefetch_distance(int64_t block_bytes) {
    return block_bytes * ((kPrefetchBytes + block_bytes - 1) / block_bytes);
}
template <int64_t Bytes>
inline void prefetch_step(const char* ahead, int64_t off, const char* end) {
    if constexpr (Bytes >= 64) {
        for (int64_t b = 0; b < Bytes; b += 64)
            if (ahead + off + b < end) __builtin_prefetch(ahead + off + b, 0, 3);
    } else {
        if (off % 64 == 0 && ahead + off < end) __builtin_prefetch(ahead + off, 0, 3);
    }
}

// Batch 1: four rows at a time share each x load, with the block-ahead prefetch above.
template <WeightType T>
void matvec_batch1(const MatView& w, const float* x, float* y, int64_t r0, int64_t r1) {
    const int64_t cols = w.cols, cv = cols - cols % kLanes;
    constexpr int64_t eb = kWeightBytes<T>;
    const char* const base = static_cast<const char*>(w.data);
    const char* const pf_end = base + r1 * cols * eb;
    const int64_t pf_ahead = prefetch_distance(4 * cols * eb);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        VecF a0 = {}, a1 = {}, a2 = {}, a3 = {};
        const int64_t o0 = r * cols, o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
        const char* const pf = base + o0 * eb + pf_ahead;
        for (int64_t c = 0; c < cv; c += kLanes) {
            prefetch_step<4 * kLanes * eb>(pf, 4 * eb * c, pf_end);  // the block consumes 4·kLanes·eb bytes a step
            const VecF xv = load_x(x + c);
            a0 += load_w<T>(w.data, o0 + c) * xv;
            a1 += load_w<T>(w.data, o1 + c) * xv;
            a2 += load_w<T>(w.data, o2 + c) * xv;
            a3 += load_w<T>(w.data, o3 + c) * xv;
        }
        float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (int64_t c = cv; c < cols; ++c) {
            s0 += load_w1<T>(w.data, o0 + c) * x[c];
            s1 += load_w1<T>(w.data, o1 + c) * x[c];
            s2 += load_w1<T>(w.data, o2 + c) * x[c];
            s3 += load_w1<T>(w.data, o3 + c) * x[c];
        }
        y[r] = s0;
        y[r + 1] = s1;
        y[r + 2] = s2;
        y[r + 3] = s3;
    }
    for (; r < r1; ++r) {
        VecF a0 = {};
        const int64_t o0 = r * cols;
        for (int64_t c = 0; c < cv; c += kLanes) a0 += load_w<T>(w.data, o0 + c) * load_x(x + c);
        float s0 = hsum(a0);
        for (int64_t c = cv; c < cols; ++c) s0 += load_w1<T>(w.data, o0 + c) * x[c];
        y[r] = s0;
    }
}

// Batch > 1, fp32 and bf16: RB rows and NB batch items (2..8) per pass, RB·NB accumulators in registers, so each
// loaded weight vector serves NB activation vectors and each activation load serves RB rows. Every (row, item) sum
// runs exactly as in matvec_batch1 (lanes over the columns in order, hsum, then the scalar tail), so a sequence's
// result does not depend on the batch it decodes in, bit for bit.
template <int NB>
constexpr int rows_per_pass() {
#if AVIARY_VEC_BYTES == 64 && defined(__AVX512F__)
    constexpr int regs = 28;  // of 32 vector registers, a few left for the compiler
#elif AVIARY_VEC_BYTES == 64
    constexpr int regs = 7;  // the 64-byte twin on AVX2: each vector is two of the 16 registers
#else
    constexpr int regs = 14;
#endif
    constexpr int rb = regs / (NB + 1);
    return rb < 1 ? 1 : rb > 4 ? 4 : rb;
}

template <WeightType T, int NB, int RB>
inline void matvec_pass(const MatView& w, const float* x, int64_t xs, float* y, int64_t ys, int64_t r) {
    const int64_t cols = w.cols, cv = cols - cols % kLanes;
    VecF acc[RB][NB] = {};
    for (int64_t c = 0; c < cv; c += kLanes) {
        VecF wv[RB];
#pragma GCC unroll 8
        for (int i = 0; i < RB; ++i) wv[i] = load_w<T>(w.data, (r + i) * cols + c);
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
            VecF xv = load_x(x + b * xs + c);
#if AVIARY_VEC_BYTES == 32 || defined(__AVX512F__)
            // One load into a register for the RB rows (GCC would fold a load of the same x into every FMA).
            if constexpr (RB > 1) asm("" : "+v"(xv));
#endif
#pragma GCC unroll 8
            for (int i = 0; i < RB; ++i) acc[i][b] += wv[i] * xv;
        }
    }
    float sums[RB * NB];
    hsum_many(&acc[0][0], RB * NB, sums);
    for (int i = 0; i < RB; ++i) {
        const int64_t o = (r + i) * cols;
        for (int b = 0; b < NB; ++b) {
            float s = sums[i * NB + b];
            for (int64_t c = cv; c < cols; ++c) s += load_w1<T>(w.data, o + c) * x[b * xs + c];
            y[b * ys + r + i] = s;
        }
    }
}

template <WeightType T, int NB>
void matvec_rows_nb(const MatView& w, const float* x, int64_t xs, float* y, int64_t ys, int64_t r0, int64_t r1) {
    constexpr int RB = rows_per_pass<NB>();
    int64_t r = r0;
    for (; r + RB <= r1; r += RB) matvec_pass<T, NB, RB>(w, x, xs, y, ys, r);
    for (; r < r1; ++r) matvec_pass<T, NB, 1>(w, x, xs, y, ys, r);
}

// Batch > 1: up to 8 batch items share each weight load; above 8, row blocks of 24 (a multiple of every
// rows_per_pass) keep a block's weights in L1 while each group of up to 8 items reads them.
// fn(rb, re, b0, std::integral_constant<int, NB>) runs one (row block, batch group) with NB = its size (1..8).
template <class Fn>
inline void for_batch_groups(int64_t r0, int64_t r1, int64_t batch, Fn&& fn) {
    const int64_t block = batch <= 8 ? r1 - r0 : 24;
    for (int64_t rb = r0; rb < r1; rb += block) {
        const int64_t re = rb + block < r1 ? rb + block : r1;
        for (int64_t b0 = 0; b0 < batch; b0 += 8) {
            switch (batch - b0 < 8 ? batch - b0 : 8) {
                case 1:
                    fn(rb, re, b0, std::integral_constant<int, 1>{});
                    break;
                case 2:
                    fn(rb, re, b0, std::integral_constant<int, 2>{});
                    break;
                case 3:
                    fn(rb, re, b0, std::integral_constant<int, 3>{});
                    break;
                case 4:
                    fn(rb, re, b0, std::integral_constant<int, 4>{});
                    break;
                case 5:
                    fn(rb, re, b0, std::integral_constant<int, 5>{});
                    break;
                case 6:
                    fn(rb, re, b0, std::integral_constant<int, 6>{});
                    break;
                case 7:
                    fn(rb, re, b0, std::integral_constant<int, 7>{});
                    break;
                default:
                    fn(rb, re, b0, std::integral_constant<int, 8>{});
                    break;
            }
        }
    }
}

// ---- int8 weights: integer dot products on int16 activations (the semantics in cpu_engine_kernels.h) ----
// Each step widens kStep int8 weights to int16 and multiplies them with kStep int16 activation codes by vpmaddwd
// (pairs summed into int32 lanes), about half the instructions per weight of widening to fp32. Lanes are summed
// into an exact int64 every kInt8Block columns, so the result equals the scalar reference's bit for bit.
#if AVIARY_VEC_BYTES == 64 && defined(__AVX512F__)
struct I32v {
    __m512i v = _mm512_setzero_si512();
};
constexpr int64_t kStep = 32;
inline void madd_w(I32v& acc, __m512i w16, const int16_t* x) {
    acc.v = _mm512_add_epi32(acc.v, _mm512_madd_epi16(w16, _mm512_loadu_si512(x)));
}
inline __m512i widen16(const int8_t* w) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
}
using W16 = __m512i;
inline int64_t lanes_sum(const I32v& a) {
    alignas(64) int32_t t[16];
    _mm512_store_si512(t, a.v);
    int64_t s = 0;
    for (int32_t v : t) s += v;
    return s;
}
#elif AVIARY_VEC_BYTES == 64
// The 64-byte layout without AVX-512 (the test twin): the same 32-column steps as two AVX2 halves.
struct I32v {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
};
constexpr int64_t kStep = 32;
struct W16 {
    __m256i lo, hi;
};
inline W16 widen16(const int8_t* w) {
    return {_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)))};
}
inline void madd_w(I32v& acc, const W16& w16, const int16_t* x) {
    acc.lo = _mm256_add_epi32(acc.lo, _mm256_madd_epi16(w16.lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))));
    acc.hi = _mm256_add_epi32(acc.hi,
                              _mm256_madd_epi16(w16.hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16))));
}
inline int64_t lanes_sum(const I32v& a) {
    alignas(32) int32_t t[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), a.lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(t + 8), a.hi);
    int64_t s = 0;
    for (int32_t v : t) s += v;
    return s;
}
#else
struct I32v {
    __m256i v = _mm256_setzero_si256();
};
constexpr int64_t kStep = 16;
using W16 = __m256i;
inline W16 widen16(const int8_t* w) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
}
inline void madd_w(I32v& acc, W16 w16, const int16_t* x) {
    acc.v = _mm256_add_epi32(acc.v, _mm256_madd_epi16(w16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))));
}
inline int64_t lanes_sum(const I32v& a) {
    alignas(32) int32_t t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), a.v);
    int64_t s = 0;
    for (int32_t v : t) s += v;
    return s;
}
#endif
static_assert(kInt8Block % kStep == 0, "the int64 flush must fall on a step boundary");

// quantize_activations_int16 (cpu_engine_kernels.h) with 8-wide AVX2 steps (also inside the 64-byte builds, which
// are compiled with AVX2 too): the same maximum, the same products x·(32767/max) and the same round-half-even
// conversion (vcvtps2dq in the default rounding mode), so the codes equal the scalar function's.
float quantize_x(const float* x, int64_t n, int16_t* codes) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + c), abs_mask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));                         // NaN
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ));  // ±inf
        mx = _mm256_max_ps(mx, a);
    }
    alignas(32) float t[8];
    _mm256_store_ps(t, mx);
    float m = 0;
    for (float v : t) m = v > m ? v : m;
    bool finite = _mm256_movemask_ps(bad) == 0;
    for (; c < n; ++c) {
        const float a = x[c] < 0 ? -x[c] : x[c];
        finite = finite && a == a && a != __builtin_inff();
        m = a > m ? a : m;
    }
    if (!finite || m == 0) {
        std::memset(codes, 0, size_t(n) * sizeof(int16_t));
        return finite ? 1.0f : __builtin_nanf("");
    }
    const float inv = 32767.0f / m;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (c = 0; c + 8 <= n; c += 8) {
        const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c), vinv));
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c), q16);
    }
    for (; c < n; ++c) codes[c] = static_cast<int16_t>(__builtin_nearbyintf(x[c] * inv));
    return m / 32767.0f;
}

// Exact integer dot products of NR int8 rows q[i] with NB activation-code vectors xq + b·xq_stride, into
// total[i·NB + b]: vector steps inside each kInt8Block block (each widened weight step serves all NB vectors), lanes
// into int64 at the block end, the scalar tail (only in the last block) added exactly. With `ahead` non-null the NR
// rows are one contiguous block and the block-ahead prefetch runs.
template <int NR, int NB>
inline void int8_dot(const int8_t* const* q, const int16_t* xq, int64_t xq_stride, int64_t cols, int64_t* total,
                     const char* ahead, const char* end) {
    for (int i = 0; i < NR * NB; ++i) total[i] = 0;
    for (int64_t cb = 0; cb < cols; cb += kInt8Block) {
        const int64_t ce = cb + kInt8Block < cols ? cb + kInt8Block : cols;
        const int64_t cv = ce - (ce - cb) % kStep;
        I32v acc[NR * NB];
        for (int64_t c = cb; c < cv; c += kStep) {
            if (ahead) prefetch_step<NR * kStep>(ahead, NR * c, end);
#pragma GCC unroll 8
            for (int i = 0; i < NR; ++i) {  // unrolled, so the accumulators stay in registers
                const W16 w16 = widen16(q[i] + c);
#pragma GCC unroll 8
                for (int b = 0; b < NB; ++b) madd_w(acc[i * NB + b], w16, xq + b * xq_stride + c);
            }
        }
        for (int i = 0; i < NR; ++i)
            for (int b = 0; b < NB; ++b) {
                int64_t& t = total[i * NB + b];
                t += lanes_sum(acc[i * NB + b]);
                for (int64_t c = cv; c < ce; ++c) t += int64_t(q[i][c]) * xq[b * xq_stride + c];
            }
    }
}

// Batch 1 on int8 weights: four rows at a time share each activation load, with the block-ahead prefetch.
void matvec_i8_batch1(const MatView& w, const int16_t* xq, float sx, float* y, int64_t r0, int64_t r1) {
    const int64_t cols = w.cols;
    const int8_t* const data = static_cast<const int8_t*>(w.data);
    const char* const base = reinterpret_cast<const char*>(data);
    const char* const pf_end = base + r1 * cols;
    const int64_t pf_ahead = prefetch_distance(4 * cols);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int8_t* q[4] = {data + r * cols, data + (r + 1) * cols, data + (r + 2) * cols, data + (r + 3) * cols};
        int64_t total[4];
        int8_dot<4, 1>(q, xq, 0, cols, total, base + r * cols + pf_ahead, pf_end);
        for (int i = 0; i < 4; ++i) y[r + i] = int8_row_output(total[i], sx, w.scale[r + i]);
    }
    for (; r < r1; ++r) {
        const int8_t* q[1] = {data + r * cols};
        int64_t total[1];
        int8_dot<1, 1>(q, xq, 0, cols, total, nullptr, nullptr);
        y[r] = int8_row_output(total[0], sx, w.scale[r]);
    }
}

// Batch > 1 on int8 weights: each row's widened weights serve every batch item's activation codes.
template <int NB>
void matvec_i8_rows_nb(const MatView& w, const int16_t* xq, int64_t xq_stride, const float* sx, float* y,
                       int64_t ys, int64_t r0, int64_t r1) {
    const int8_t* const data = static_cast<const int8_t*>(w.data);
    for (int64_t r = r0; r < r1; ++r) {
        const int8_t* q[1] = {data + r * w.cols};
        int64_t total[NB];
        int8_dot<1, NB>(q, xq, xq_stride, w.cols, total, nullptr, nullptr);
        for (int b = 0; b < NB; ++b) y[b * ys + r] = int8_row_output(total[b], sx[b], w.scale[r]);
    }
}

void matvec_i8(const MatView& w, const float* x, int64_t xs, int64_t batch, float* y, int64_t ys, int64_t r0,
               int64_t r1) {
    // Activation codes for every batch item (one scale each), padded to a whole step for the vector loads.
    const int64_t cols = w.cols, stride = (cols + kStep - 1) / kStep * kStep;
    thread_local std::vector<int16_t> codes;
    thread_local std::vector<float> scales;
    if (codes.size() < size_t(batch * stride)) codes.resize(size_t(batch * stride));
    if (scales.size() < size_t(batch)) scales.resize(size_t(batch));
    for (int64_t b = 0; b < batch; ++b) scales[b] = quantize_x(x + b * xs, cols, codes.data() + b * stride);
    if (batch == 1) return matvec_i8_batch1(w, codes.data(), scales[0], y, r0, r1);
    for_batch_groups(r0, r1, batch, [&](int64_t rb, int64_t re, int64_t b0, auto nb) {
        const int16_t* xb = codes.data() + b0 * stride;
        if constexpr (decltype(nb)::value == 1) matvec_i8_batch1(w, xb, scales[b0], y + b0 * ys, rb, re);
        else matvec_i8_rows_nb<decltype(nb)::value>(w, xb, stride, scales.data() + b0, y + b0 * ys, ys, rb, re);
    });
}

template <WeightType T>
void matvec_typed(const MatView& w, const float* x, int64_t xs, int64_t batch, float* y, int64_t ys, int64_t r0,
                  int64_t r1) {
    if (batch == 1) return matvec_batch1<T>(w, x, y, r0, r1);
    for_batch_groups(r0, r1, batch, [&](int64_t rb, int64_t re, int64_t b0, auto nb) {
        if constexpr (decltype(nb)::value == 1) matvec_batch1<T>(w, x + b0 * xs, y + b0 * ys, rb, re);
        else matvec_rows_nb<T, decltype(nb)::value>(w, x + b0 * xs, xs, y + b0 * ys, ys, rb, re);
    });
}

void matvec(const MatView& w, const float* x, int64_t xs, int64_t batch, float* y, int64_t ys, int64_t r0, int64_t r1) {
    switch (w.type) {
        case WeightType::F32:
            return matvec_typed<WeightType::F32>(w, x, xs, batch, y, ys, r0, r1);
        case WeightType::BF16:
            return matvec_typed<WeightType::BF16>(w, x, xs, batch, y, ys, r0, r1);
        case WeightType::I8:
            return matvec_i8(w, x, xs, batch, y, ys, r0, r1);
    }
}

}  // namespace

const KernelSet* kernel_set() {
    static const KernelSet set{AVIARY_SIMD_NAME, &matvec};
    return &set;
}

}  // namespace aviary::cpu::AVIARY_SIMD_NS
