// The scalar reference matrix-vector kernel of the CPU decode engine (cpu_engine_kernels.h), the bf16 conversions,
// and the run-time choice between it and the SIMD builds (matvec_avx2.cpp / matvec_avx512.cpp) by
// __builtin_cpu_supports. The SIMD builds are tested against this file (tests/core/test_cpu_engine_kernels.cpp).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/error.h"

namespace aviary::cpu {

// Defined by the SIMD translation units; return nullptr when not built.
const KernelSet* simd_kernels_avx2();
const KernelSet* simd_kernels_avx512();
const KernelSet* simd_kernels_avx512vnni();

float quantize_activations_int16(const float* x, int64_t n, int16_t* codes) {
    float m = 0;
    bool finite = true;
    for (int64_t c = 0; c < n; ++c) {
        finite = finite && std::isfinite(x[c]);
        m = std::max(m, std::fabs(x[c]));
    }
    if (!finite || m == 0) {
        std::fill(codes, codes + n, int16_t(0));
        return finite ? 1.0f : std::numeric_limits<float>::quiet_NaN();
    }
    const float inv = 32767.0f / m;
    for (int64_t c = 0; c < n; ++c) codes[c] = static_cast<int16_t>(std::nearbyint(x[c] * inv));
    return m / 32767.0f;
}

namespace {

float weight_at(const MatView& w, int64_t r, int64_t c) {
    const int64_t i = r * w.cols + c;
    switch (w.type) {
        case WeightType::F32:
            return static_cast<const float*>(w.data)[i];
        case WeightType::BF16:
            return bf16_to_fp32(static_cast<const uint16_t*>(w.data)[i]);
        case WeightType::I8:
            return static_cast<float>(static_cast<const int8_t*>(w.data)[i]);
    }
    return 0;
}

// y[b][r] = Σ_c W[r][c]·x[b][c]; int8 rows on int16 activation codes with an exact int64 sum (the header's rule).
void matvec_scalar(const MatView& w, const float* x, int64_t x_stride, int64_t batch, float* y, int64_t y_stride,
                   int64_t row_begin, int64_t row_end) {
    if (w.type == WeightType::I8) {
        std::vector<int16_t> codes(static_cast<size_t>(w.cols));
        for (int64_t b = 0; b < batch; ++b) {
            const float s = quantize_activations_int16(x + b * x_stride, w.cols, codes.data());
            for (int64_t r = row_begin; r < row_end; ++r) {
                const int8_t* q = static_cast<const int8_t*>(w.data) + r * w.cols;
                int64_t sum = 0;
                for (int64_t c = 0; c < w.cols; ++c) sum += int64_t(q[c]) * codes[c];
                y[b * y_stride + r] = int8_row_output(sum, s, w.scale[r]);
            }
        }
        return;
    }
    for (int64_t b = 0; b < batch; ++b) {
        const float* xb = x + b * x_stride;
        for (int64_t r = row_begin; r < row_end; ++r) {
            float acc = 0;
            for (int64_t c = 0; c < w.cols; ++c) acc += weight_at(w, r, c) * xb[c];
            y[b * y_stride + r] = w.type == WeightType::I8 ? acc * w.scale[r] : acc;
        }
    }
}

}  // namespace

const KernelSet& kernels_scalar() {
    static const KernelSet set{"scalar", &matvec_scalar};
    return set;
}

const KernelSet* kernels_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return nullptr;
    return simd_kernels_avx2();
#else
    return nullptr;
#endif
}

const KernelSet* kernels_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl")))
        return nullptr;
    return simd_kernels_avx512();
#else
    return nullptr;
#endif
}

const KernelSet* kernels_avx512vnni() {
#if defined(__x86_64__) || defined(__i386__)
    if (!kernels_avx512()) return nullptr;
    if (!__builtin_cpu_supports("avx512vnni")) return nullptr;
    return simd_kernels_avx512vnni();
#else
    return nullptr;
#endif
}

namespace {

// The SIMD sets by name, worst to best: the one list kernels_available and kernels_named read.
struct SimdSet {
    const char* name;
    const KernelSet* (*get)();
};
constexpr SimdSet kSimdSets[] = {
    {"avx2", &kernels_avx2}, {"avx512", &kernels_avx512}, {"avx512vnni", &kernels_avx512vnni}};

}  // namespace

std::vector<const KernelSet*> kernels_available() {
    std::vector<const KernelSet*> sets{&kernels_scalar()};
    for (const SimdSet& s : kSimdSets)
        if (const KernelSet* set = s.get()) sets.push_back(set);
    return sets;
}

const KernelSet& kernels_named(const std::string& name) {
    if (name == "auto" || name.empty()) return *kernels_available().back();
    if (name == "scalar") return kernels_scalar();
    std::string known = "auto, scalar";
    for (const SimdSet& s : kSimdSets) {
        if (name == s.name) {
            const KernelSet* set = s.get();
            AVIARY_CHECK(set != nullptr, "CPU kernel set '", name, "' is not supported by this CPU (or build)");
            return *set;
        }
        known += std::string(", ") + s.name;
    }
    AVIARY_FAIL("unknown CPU kernel set '", name, "' (expected ", known, ")");
}

const KernelSet& kernels_best() {
    static const KernelSet& best = [&]() -> const KernelSet& {
        const char* env = std::getenv("AVIARY_CPU_KERNEL");
        return kernels_named(env ? env : "auto");
    }();
    return best;
}

}  // namespace aviary::cpu
