// OpenBLAS's core type (core/src/blas_core.cpp): the rank table and the core chosen for a feature set, and, since
// this executable starts through ensure_blas_core() (tests/common/test_main.cpp), that the core OpenBLAS runs now is
// at least the class this CPU's features call for. tests/cli/test_cli.cpp checks the same through the CLI with a
// clean environment (the re-exec itself).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "aviary/core/blas_core.h"
#include "aviary/core/cpu_info.h"

TEST(BlasCore, RanksAndChoiceByFeatures) {
    EXPECT_EQ(aviary::openblas_core_rank("Prescott"), 0);
    EXPECT_EQ(aviary::openblas_core_rank("NEHALEM"), 0);
    EXPECT_EQ(aviary::openblas_core_rank("Sandybridge"), 1);
    EXPECT_EQ(aviary::openblas_core_rank("Haswell"), 2);
    EXPECT_EQ(aviary::openblas_core_rank("Zen"), 2);
    EXPECT_EQ(aviary::openblas_core_rank("SkylakeX"), 3);
    EXPECT_EQ(aviary::openblas_core_rank("Cooperlake"), 4);
    EXPECT_EQ(aviary::openblas_core_rank("NeoverseN1"), -1);  // unknown: never corrected
    aviary::CpuInfo c;
    EXPECT_EQ(aviary::openblas_core_for(c), "");
    c.avx2 = c.fma = true;
    EXPECT_EQ(aviary::openblas_core_for(c), "Haswell");
    c.avx512 = true;
    EXPECT_EQ(aviary::openblas_core_for(c), "SkylakeX");
    c.avx512_bf16 = true;
    EXPECT_EQ(aviary::openblas_core_for(c), "Cooperlake");
}

TEST(BlasCore, CoreAfterStartUpMatchesTheCpuClass) {
    const aviary::BlasInfo b = aviary::blas_info();
    const aviary::CpuInfo& cpu = aviary::cpu_info();
    std::printf("[ info ] CPU %s; %s core %s (%s); for this CPU: %s\n", cpu.model.c_str(), b.library.c_str(),
                b.core.c_str(), b.how.c_str(), b.wanted.empty() ? "(no better choice)" : b.wanted.c_str());
    if (b.library != "OpenBLAS") GTEST_SKIP() << "the BLAS is not OpenBLAS";
    const char* keep = std::getenv("AVIARY_BLAS_CORE");
    if (keep && std::string(keep) == "keep") GTEST_SKIP() << "AVIARY_BLAS_CORE=keep";
    if (b.how.rfind("set by the user", 0) == 0) GTEST_SKIP() << b.how;
    if (b.wanted.empty()) return;
    EXPECT_GE(aviary::openblas_core_rank(b.core), aviary::openblas_core_rank(b.wanted)) << b.how;
}
