// What this CPU is and which instruction sets it has, read once at run time (cpuid through the compiler's
// __builtin_cpu_supports, the model name from /proc/cpuinfo). Code chooses its paths from these features, never
// from the model name.
#pragma once
#include <string>
#include <vector>

namespace aviary {

struct CpuInfo {
    std::string model;  // "model name" of /proc/cpuinfo ("unknown" where absent)
    bool avx2 = false, fma = false;
    bool avx512 = false;  // AVX-512 F, BW, DQ, VL and CD: what OpenBLAS's SkylakeX kernels and ours need
    bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
    bool amx_tile = false, amx_bf16 = false, amx_int8 = false;

    // The features above that are present, by their /proc/cpuinfo names ("avx2", "avx512_bf16", "amx_tile", …).
    std::vector<std::string> feature_names() const;
    // Native bf16 arithmetic (AVX512-BF16 or AMX-BF16).
    bool native_bf16() const { return avx512_bf16 || amx_bf16; }
};

// This machine's CPU (computed on first use).
const CpuInfo& cpu_info();

}  // namespace aviary
