// blas_core.h. OpenBLAS's functions are looked up at run time (dlsym), as in threads.cpp, so the build does not
// depend on which BLAS Debian's alternatives selected.
#include "aviary/core/blas_core.h"
#include "aviary/core/threads.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace aviary {
namespace {

constexpr const char* kFromVar = "AVIARY_BLAS_CORE_FROM";  // set for the re-executed program: what OpenBLAS chose

std::string call_string_fn(const char* symbol) {
    using Fn = char* (*)();
    auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, symbol));
    if (!fn) return {};
    const char* s = fn();
    std::string out = s ? s : "";
    while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
    return out;
}

bool lower_case_equal(const std::string& a, const char* b) {
    if (a.size() != std::strlen(b)) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

}  // namespace

int openblas_core_rank(const std::string& core) {
    static const struct {
        const char* name;
        int rank;
    } table[] = {
        {"Prescott", 0},       {"Core2", 0},       {"Penryn", 0},       {"Dunnington", 0}, {"Nehalem", 0},
        {"Atom", 0},           {"Katmai", 0},      {"Coppermine", 0},   {"Northwood", 0},  {"Banias", 0},
        {"Athlon", 0},         {"Opteron", 0},     {"Opteron_SSE3", 0}, {"Barcelona", 0},  {"Nano", 0},
        {"Bobcat", 0},         {"Sandybridge", 1}, {"Bulldozer", 1},    {"Piledriver", 1}, {"Steamroller", 1},
        {"Excavator", 1},      {"Haswell", 2},     {"Zen", 2},          {"SkylakeX", 3},   {"Cooperlake", 4},
        {"SapphireRapids", 5},
    };
    for (const auto& e : table)
        if (lower_case_equal(core, e.name)) return e.rank;
    return -1;
}

std::string openblas_core_for(const CpuInfo& cpu) {
    if (cpu.avx512 && cpu.avx512_bf16) return "Cooperlake";
    if (cpu.avx512) return "SkylakeX";
    if (cpu.avx2 && cpu.fma) return "Haswell";
    return {};
}

void ensure_blas_core(char** argv) {
    ensure_start_up_env(argv, false);
}

void ensure_start_up_env(char** argv, bool fp32_training) {
    std::vector<std::pair<std::string, std::string>> set;  // what to set before the one re-exec
    const bool keep_core = [] {
        const char* keep = std::getenv("AVIARY_BLAS_CORE");
        return std::getenv("OPENBLAS_CORETYPE") || (keep && std::strcmp(keep, "keep") == 0);
    }();
    if (!keep_core) {
        const std::string core = call_string_fn("openblas_get_corename");
        const std::string wanted = openblas_core_for(cpu_info());
        const int have = core.empty() ? -1 : openblas_core_rank(core);
        if (!wanted.empty() && have >= 0 && have < openblas_core_rank(wanted)) {
            set.emplace_back("OPENBLAS_CORETYPE", wanted);
            set.emplace_back(kFromVar, core);
        }
    }
    if (fp32_training) {
        // idle workers that sleep at once (threads.h); only where the user chose neither setting
        bool user_chose = false;
        for (const EnvSetting& setting : kIdleWorkersSleepEnv) user_chose = user_chose || std::getenv(setting.name);
        if (!user_chose)
            for (const EnvSetting& setting : kIdleWorkersSleepEnv) set.emplace_back(setting.name, setting.value);
    }
    if (set.empty()) return;
    for (const auto& [name, value] : set) setenv(name.c_str(), value.c_str(), 1);
    std::fflush(nullptr);
    execv("/proc/self/exe", argv);
    // exec failed (no /proc, a sandbox): go on as loaded; blas_info() and thread_pools_sleep_when_idle() tell
    for (const auto& entry : set) unsetenv(entry.first.c_str());
}

BlasInfo blas_info() {
    BlasInfo b;
    b.core = call_string_fn("openblas_get_corename");
    if (b.core.empty()) {
        b.library = "unknown (no openblas_get_corename)";
        b.how = "not OpenBLAS";
        return b;
    }
    b.library = "OpenBLAS";
    b.config = call_string_fn("openblas_get_config");
    b.wanted = openblas_core_for(cpu_info());
    const char* env = std::getenv("OPENBLAS_CORETYPE");
    const char* from = std::getenv(kFromVar);
    if (from && env) {
        b.corrected_from = from;
        b.how = std::string("corrected from ") + from + " (OPENBLAS_CORETYPE=" + env + ", set at start-up)";
    } else if (env) {
        b.how = std::string("set by the user (OPENBLAS_CORETYPE=") + env + ")";
    } else if (!b.wanted.empty() && openblas_core_rank(b.core) >= 0 &&
               openblas_core_rank(b.core) < openblas_core_rank(b.wanted)) {
        b.how = "chosen by OpenBLAS, below this CPU's class (not corrected: AVIARY_BLAS_CORE=keep or exec failed)";
    } else {
        b.how = "chosen by OpenBLAS";
    }
    return b;
}

}  // namespace aviary
