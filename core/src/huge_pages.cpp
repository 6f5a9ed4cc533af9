// Buffers on transparent huge pages (huge_pages.h).
#include "aviary/core/huge_pages.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <cstring>
#include <string>

#include "aviary/core/error.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace aviary::cpu {
namespace {

uintptr_t round_up(uintptr_t v, uintptr_t to) {
    return (v + to - 1) / to * to;
}

}  // namespace

std::string transparent_huge_pages_mode() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    if (!f || !std::getline(f, line)) return "unavailable";
    // "always [madvise] never": the bracketed word is the policy in force.
    const size_t open = line.find('['), close = line.find(']');
    if (open == std::string::npos || close == std::string::npos || close < open) return "unavailable";
    return line.substr(open + 1, close - open - 1);
}

bool huge_pages_wanted() {
    const char* v = std::getenv("AVIARY_HUGE_PAGES");
    return !(v && (std::string(v) == "0" || std::string(v) == "off"));
}

void HugeDeleter::operator()(void* p) const {
#if defined(__linux__)
    ::munmap(p, bytes);
#else
    std::free(p);
#endif
}

HugeBuffer alloc_huge(size_t bytes) {
    const size_t size = round_up(bytes == 0 ? 1 : bytes, kHugePageBytes);
#if defined(__linux__)
    // Map 2 MiB more than needed and trim the ends so that what is left starts on a 2 MiB boundary.
    void* raw = ::mmap(nullptr, size + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    AVIARY_CHECK(raw != MAP_FAILED, "could not map ", size >> 20, " MiB of memory");
    const uintptr_t start = round_up(reinterpret_cast<uintptr_t>(raw), kHugePageBytes);
    const size_t head = start - reinterpret_cast<uintptr_t>(raw);
    if (head > 0) ::munmap(raw, head);
    ::munmap(reinterpret_cast<void*>(start + size), kHugePageBytes - head);  // head < 2 MiB: a tail is always left
    void* p = reinterpret_cast<void*>(start);
#if defined(MADV_HUGEPAGE)
    // Only the whole 2 MiB pages the caller's bytes fill: a partly filled last page stays on 4 KiB pages, where only
    // what is touched becomes resident (advised too, a 2.25 MiB tensor held 4 MiB: +12 % memory for a 0.1B fp32
    // checkpoint). Advice only: where THP is off, ordinary pages.
    const size_t whole = bytes / kHugePageBytes * kHugePageBytes;
    if (whole > 0 && huge_pages_wanted()) ::madvise(p, whole, MADV_HUGEPAGE);
#endif
#else
    void* p = std::aligned_alloc(kHugePageBytes, size);
    AVIARY_CHECK(p, "could not allocate ", size >> 20, " MiB");
    std::memset(p, 0, size);
#endif
    return HugeBuffer(p, HugeDeleter{size});
}

size_t huge_page_bytes(const std::vector<ByteRange>& ranges) {
    std::ifstream f("/proc/self/smaps");
    if (!f) return 0;
    size_t total = 0, overlap = 0;
    std::string line;
    while (std::getline(f, line)) {
        // A mapping's header: "start-end perms offset dev inode [path]" (hex addresses; the first '-' comes before
        // the dev field's ':'). Field lines ("AnonHugePages:    2048 kB") have a ':' and no '-' before it.
        const size_t colon = line.find(':'), dash = line.find('-');
        if (dash != std::string::npos && dash < colon) {
            std::istringstream head(line);
            unsigned long long a = 0, b = 0;
            char sep = 0;
            overlap = 0;
            if (head >> std::hex >> a >> sep >> b && sep == '-')
                for (const ByteRange& r : ranges) {
                    const uintptr_t lo = reinterpret_cast<uintptr_t>(r.first), hi = lo + r.second;
                    const uintptr_t s = std::max<uintptr_t>(lo, a), e = std::min<uintptr_t>(hi, b);
                    if (e > s) overlap += e - s;
                }
            continue;
        }
        if (overlap == 0) continue;
        for (const std::string key : {"AnonHugePages:", "FilePmdMapped:", "ShmemPmdMapped:"})
            if (line.rfind(key, 0) == 0)
                total += std::min<size_t>(overlap, std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024);
    }
    return total;
}

void* HugeArena::allocate(size_t bytes) {
    constexpr size_t kChunk = size_t(64) << 20;
    bytes = round_up(bytes == 0 ? 1 : bytes, 64);
    used_ += bytes;
    if (bytes > kChunk / 2) {  // a chunk of its own; the current chunk goes on serving the small ones
        chunks_.emplace_back(alloc_huge(bytes), round_up(bytes, kHugePageBytes));
        return chunks_.back().first.get();
    }
    if (bytes > left_) {
        chunks_.emplace_back(alloc_huge(kChunk), kChunk);
        next_ = static_cast<char*>(chunks_.back().first.get());
        left_ = kChunk;
    }
    void* out = next_;
    next_ += bytes;
    left_ -= bytes;
    return out;
}

std::vector<ByteRange> HugeArena::chunks() const {
    std::vector<ByteRange> out;
    for (const auto& c : chunks_) out.emplace_back(c.first.get(), c.second);
    return out;
}

}  // namespace aviary::cpu
