// cpu_info.h: features from cpuid via __builtin_cpu_supports (GCC ≥ 12 knows the AMX and BF16 names), the model
// name from /proc/cpuinfo.
#include "aviary/core/cpu_info.h"

#include <fstream>

namespace aviary {
namespace {

std::string read_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? std::string("unknown") : line.substr(start);
    }
    return "unknown";
}

CpuInfo detect() {
    CpuInfo c;
    c.model = read_model_name();
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512cd");
    c.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#if !defined(__clang__)  // names GCC 12 knows and clang 14 does not
    c.avx_vnni = __builtin_cpu_supports("avxvnni");
    c.amx_tile = __builtin_cpu_supports("amx-tile");
    c.amx_bf16 = __builtin_cpu_supports("amx-bf16");
    c.amx_int8 = __builtin_cpu_supports("amx-int8");
#endif
#endif
    return c;
}

}  // namespace

std::vector<std::string> CpuInfo::feature_names() const {
    std::vector<std::string> out;
    auto add = [&](bool on, const char* name) {
        if (on) out.emplace_back(name);
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(avx512, "avx512f+bw+dq+vl+cd");
    add(avx512_vnni, "avx512_vnni");
    add(avx512_bf16, "avx512_bf16");
    add(avx_vnni, "avx_vnni");
    add(amx_tile, "amx_tile");
    add(amx_bf16, "amx_bf16");
    add(amx_int8, "amx_int8");
    return out;
}

const CpuInfo& cpu_info() {
    static const CpuInfo info = detect();
    return info;
}

}  // namespace aviary
