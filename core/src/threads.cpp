// Thread settings (see threads.h). OpenBLAS keeps its own pthread pool beside LibTorch's OpenMP pool;
// its setter is looked up at run time so the build does not depend on which BLAS Debian selected.
#include "aviary/core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace aviary {

int default_thread_count() {
    if (const char* env = std::getenv("AVIARY_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

void set_thread_count(int n) {
    if (n <= 0) n = default_thread_count();
    at::set_num_threads(n);
    using SetThreads = void (*)(int);
    if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

int thread_count() { return at::get_num_threads(); }

}  // namespace aviary
