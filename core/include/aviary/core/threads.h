// Thread settings for the CPU path: one place that sets LibTorch's intra-op threads, its inter-op pool
// and OpenBLAS's own pool together, so that OpenMP and OpenBLAS threads do not oversubscribe the cores.
#pragma once

namespace aviary {

// Number of threads used when the user does not choose: $AVIARY_THREADS, else the number of cores.
int default_thread_count();
// Sets LibTorch intra-op threads and the OpenBLAS pool to n (n <= 0 means default_thread_count()).
void set_thread_count(int n);
int thread_count();

}  // namespace aviary
