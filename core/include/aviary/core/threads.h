// Thread settings for the CPU path: one place that sets LibTorch's intra-op threads, its inter-op pool
// and OpenBLAS's own pool together, so that OpenMP and OpenBLAS threads do not oversubscribe the cores.
#pragma once

namespace aviary {

// Number of threads used when the user does not choose: $AVIARY_THREADS, else the number of cores.
int default_thread_count();
// Gives the OpenBLAS pool n threads (n <= 0 means default_thread_count()) and LibTorch's element-wise ops one
// (measured: two OpenMP workers spinning beside OpenBLAS's pool slow decode 3-12x on 2 cores; see threads.cpp).
void set_thread_count(int n);
// The BLAS thread count (the number that matters for the matrix products).
int thread_count();

}  // namespace aviary
