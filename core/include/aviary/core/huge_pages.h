// Large read-mostly buffers (checkpoint tensors, the CPU engine's own weight layouts, the bandwidth probe) on 2 MiB
// pages where the kernel offers transparent huge pages (THP). A decode step streams every weight once: on 4 KiB pages
// that is a TLB miss, and in a VM a two-level page walk, every 4 KiB. Measured on the 2-core Xeon VM
// (docs/BENCHMARKS.md, "Weights on 2 MiB pages"): int8 decode +2–3 % with one model loaded, +7–30 % with two (their
// weights compete for the L3). Everything here degrades to ordinary memory where THP is off or absent; nothing fails
// because of it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace aviary::cpu {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// The kernel's THP policy (/sys/kernel/mm/transparent_hugepage/enabled): "always", "madvise", "never", or
// "unavailable" (no such file: not Linux, or a kernel without THP).
std::string transparent_huge_pages_mode();

// False when $AVIARY_HUGE_PAGES is "0" or "off": then nothing here advises or moves memory (ordinary 4 KiB pages), for
// A/B runs and for machines where the kernel's compaction for huge pages stalls. Read at each call.
bool huge_pages_wanted();

struct HugeDeleter {
    size_t bytes = 0;  // the mapping's length
    void operator()(void* p) const;
};
using HugeBuffer = std::unique_ptr<void, HugeDeleter>;

// `bytes` of zeroed memory aligned to 2 MiB: a fresh anonymous mapping of its own (not the C heap, whose reused
// memory is already on 4 KiB pages), whose whole 2 MiB pages are advised for huge pages (MADV_HUGEPAGE) before
// anything touches them, so that their first touch faults in whole 2 MiB pages; the part of a last 2 MiB page that
// `bytes` fills only partly stays on 4 KiB pages (no memory beyond the bytes asked for becomes resident). Throws
// aviary::Error when the memory cannot be had.
HugeBuffer alloc_huge(size_t bytes);

// Bytes of the given ranges (base, bytes) that are resident on huge pages now, from /proc/self/smaps: for each mapping
// a range overlaps, its AnonHugePages (or FilePmdMapped) up to the overlap. Approximate where one mapping also holds
// other data (the heap); 0 where smaps cannot be read.
using ByteRange = std::pair<const void*, size_t>;
size_t huge_page_bytes(const std::vector<ByteRange>& ranges);

// Hands out 64-byte aligned pieces of 64 MiB alloc_huge chunks, so that many matrices share huge pages and lie one
// after another in the order they are allocated; a request over 32 MiB gets a chunk of its own. Pieces live as
// long as the arena. Not thread-safe.
class HugeArena {
public:
    void* allocate(size_t bytes);
    // Every chunk (base, bytes), e.g. for huge_page_bytes.
    std::vector<ByteRange> chunks() const;
    size_t bytes_used() const { return used_; }

private:
    std::vector<std::pair<HugeBuffer, size_t>> chunks_;
    char* next_ = nullptr;
    size_t left_ = 0, used_ = 0;
};

}  // namespace aviary::cpu
