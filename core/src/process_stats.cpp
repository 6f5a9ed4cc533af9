// process_stats.h: the peak resident set from /proc/self/status (VmHWM, Linux) or getrusage (ru_maxrss, KiB on
// Linux), whichever answers first.
#include "aviary/core/process_stats.h"

#include <sys/resource.h>

#include <fstream>
#include <sstream>
#include <string>

namespace aviary {

double peak_rss_mb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmHWM:", 0) != 0) continue;
        std::istringstream fields(line.substr(6));
        double kib = 0;
        if (fields >> kib && kib > 0) return kib / 1024.0;  // "VmHWM:   123456 kB"
    }
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0 && usage.ru_maxrss > 0) return double(usage.ru_maxrss) / 1024.0;
    return 0;
}

}  // namespace aviary
