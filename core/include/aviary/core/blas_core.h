// OpenBLAS's kernel choice. Debian's OpenBLAS is built for every x86-64 core type and picks one from a table of CPU
// models while it loads; a CPU newer than its table (OpenBLAS 0.3.21 on Sapphire/Emerald Rapids) gets the SSE3
// "Prescott" kernels, ~4x slower fp32 GEMMs than the AVX-512 ones. The table cannot be changed after loading, and
// OpenBLAS reads OPENBLAS_CORETYPE only while it initialises, so ensure_blas_core() re-executes the program once with
// OPENBLAS_CORETYPE set to the core type that this CPU's instruction sets call for (by features, never by model).
// The same re-exec carries the thread pools' settings for fp32 training (ensure_start_up_env, threads.h).
#pragma once
#include <string>

#include "aviary/core/cpu_info.h"

namespace aviary {

// Call first in main() of every program that does matrix work (the CLI, the studio, tests, benchmarks): when
// OpenBLAS runs a core type below what cpu_info() supports, sets OPENBLAS_CORETYPE and re-executes
// /proc/self/exe with the same arguments (stdin/stdout and the environment carry over; children inherit the
// setting). Does nothing when OPENBLAS_CORETYPE is already set (the user's choice, or after the re-exec), when
// AVIARY_BLAS_CORE=keep, when the BLAS is not OpenBLAS, or when the core is already good enough. If exec fails the
// program goes on with the slow kernels (blas_info() tells).
void ensure_blas_core(char** argv);
// ensure_blas_core, and for a run that trains in fp32 on the CPU also OMP_WAIT_POLICY=passive and
// OPENBLAS_THREAD_TIMEOUT=4 (threads.h, thread_pools_sleep_when_idle) where the user set neither: one re-exec for
// whatever is missing. The `aviary` CLI calls this (apps/cli/main.cpp), with fp32_training judged from its arguments.
void ensure_start_up_env(char** argv, bool fp32_training);

struct BlasInfo {
    std::string library;         // "OpenBLAS" or "unknown (no openblas_get_corename)"
    std::string config;          // openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY …"
    std::string core;            // the core type it runs now, e.g. "Cooperlake"
    std::string wanted;          // what this CPU's features call for ("" when no better choice is known)
    std::string corrected_from;  // the core it chose by itself before ensure_blas_core() re-executed ("" if not)
    std::string how;             // one phrase: "chosen by OpenBLAS", "corrected from Prescott", "set by the user", …
};
BlasInfo blas_info();

// The best OpenBLAS 0.3.21 core type for these features: "Cooperlake" (AVX-512 + AVX512-BF16), "SkylakeX"
// (AVX-512), "Haswell" (AVX2 + FMA), or "" (nothing better than what OpenBLAS finds by itself).
std::string openblas_core_for(const CpuInfo& cpu);
// Capability rank of an OpenBLAS x86-64 core name (the kernels' instruction set): 0 SSE-era cores (Prescott, Core2,
// Nehalem, Atom, Opteron, …), 1 AVX (Sandybridge, Bulldozer family), 2 AVX2 (Haswell, Zen), 3 SkylakeX,
// 4 Cooperlake, 5 SapphireRapids; -1 unknown names (never corrected).
int openblas_core_rank(const std::string& core);

}  // namespace aviary
