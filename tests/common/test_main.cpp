// main() of every GoogleTest executable: the same start-up as the programs (OpenBLAS's kernels checked against this
// CPU, blas_core.h), then GoogleTest.
#include <gtest/gtest.h>

#include "aviary/core/blas_core.h"

int main(int argc, char** argv) {
    aviary::ensure_blas_core(argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
