// huge_pages.h: the THP policy as sysfs states it, the arena's layout, and the smaps count of huge-page bytes against
// an independent reading of the same mapping.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
#include <algorithm>
#include <cerrno>

#include <sys/mman.h>
#include <unistd.h>

#include "aviary/core/checkpoint.h"
#include "aviary/core/huge_pages.h"
#include "common/scratch_dir.h"

namespace cpu = aviary::cpu;

namespace {

// AnonHugePages of the one mapping that contains p, read from /proc/self/smaps here (not through the library); -1
// when no mapping contains it.
long long anon_huge_of_mapping(const void* p) {
    std::ifstream f("/proc/self/smaps");
    const auto at = reinterpret_cast<uintptr_t>(p);
    std::string line;
    bool inside = false;
    while (std::getline(f, line)) {
        uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find("-") < line.find(' ')) {
            inside = lo <= at && at < hi;
            continue;
        }
        long long kb = 0;
        if (inside && std::sscanf(line.c_str(), "AnonHugePages: %lld kB", &kb) == 1) return kb * 1024;
    }
    return -1;
}

}  // namespace

TEST(HugePages, ModeIsTheBracketedPolicyOfSysfs) {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string text;
    if (!f || !std::getline(f, text)) {
        EXPECT_EQ(cpu::transparent_huge_pages_mode(), "unavailable");
        return;
    }
    std::istringstream words(text);
    std::string word, bracketed;
    while (words >> word)
        if (word.size() > 2 && word.front() == '[' && word.back() == ']') bracketed = word.substr(1, word.size() - 2);
    EXPECT_EQ(cpu::transparent_huge_pages_mode(), bracketed) << "sysfs says: " << text;
}

TEST(HugePages, ArenaPiecesAreAlignedDisjointAndInOrder) {
    cpu::HugeArena arena;
    std::vector<std::pair<char*, size_t>> pieces;
    for (size_t n : {size_t(1), size_t(100), size_t(64), size_t(3) << 20, size_t(5), size_t(65) << 20, size_t(7)}) {
        pieces.emplace_back(static_cast<char*>(arena.allocate(n)), n);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(pieces.back().first) % 64, 0u) << n;
    }
    // The 65 MiB request has a chunk of its own; the small pieces before and after it follow one another in the first.
    const auto chunks = arena.chunks();
    ASSERT_EQ(chunks.size(), 2u);
    for (const auto& c : chunks) EXPECT_EQ(reinterpret_cast<uintptr_t>(c.first) % cpu::kHugePageBytes, 0u);
    EXPECT_EQ(pieces[0].first, chunks[0].first);
    EXPECT_EQ(pieces[1].first, pieces[0].first + 64);
    EXPECT_EQ(pieces[2].first, pieces[1].first + 128);
    EXPECT_EQ(pieces[3].first, pieces[2].first + 64);
    EXPECT_EQ(pieces[4].first, pieces[3].first + (size_t(3) << 20));
    EXPECT_EQ(pieces[5].first, chunks[1].first);
    EXPECT_EQ(chunks[1].second, size_t(66) << 20);
    EXPECT_EQ(pieces[6].first, pieces[4].first + 64);
    EXPECT_EQ(arena.bytes_used(), 64 + 128 + 64 + (size_t(3) << 20) + 64 + (size_t(65) << 20) + 64);
    // Past the first chunk's 64 MiB, a new one.
    EXPECT_EQ(static_cast<char*>(arena.allocate(size_t(30) << 20)), pieces[6].first + 64);
    arena.allocate(size_t(31) << 20);
    EXPECT_EQ(arena.chunks().size(), 3u);
    for (auto& p : pieces) std::memset(p.first, 0x5a, std::min(p.second, size_t(1) << 20));  // writable
}

TEST(HugePages, CountMatchesTheMappingsOwnFigure) {
    // alloc_huge maps the buffer on its own, so the mapping's figure is the buffer's.
    const size_t bytes = size_t(64) << 20;
    cpu::HugeBuffer buf = cpu::alloc_huge(bytes);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(buf.get()) % cpu::kHugePageBytes, 0u);
    std::memset(buf.get(), 1, bytes);
    const long long own = anon_huge_of_mapping(buf.get());
    ASSERT_GE(own, 0) << "no mapping holds the buffer";
    const size_t counted = cpu::huge_page_bytes({{buf.get(), bytes}});
    EXPECT_EQ(counted, std::min<size_t>(size_t(own), bytes));
    std::printf("THP %s: %zu of %zu bytes on huge pages\n", cpu::transparent_huge_pages_mode().c_str(), counted, bytes);
    // Half the buffer counts at most half; nothing outside any mapping counts.
    EXPECT_LE(cpu::huge_page_bytes({{buf.get(), bytes / 2}}), bytes / 2);
    EXPECT_EQ(cpu::huge_page_bytes({}), 0u);
}

// Checkpoint tensors of 2 MiB and more are read into memory of their own on 2 MiB pages (the CPU engine streams fp32
// and bf16 weights from the model's own tensors); the bytes are the file's, and smaller tensors are unaffected.
TEST(HugePages, CheckpointTensorsOfTwoMiBAndMoreGetTheirOwnMapping) {
    const std::filesystem::path dir = aviary::test::scratch_dir("huge_pages_checkpoint");
    const at::Tensor big = at::arange(int64_t(3) << 18, at::kFloat).reshape({768, 1024});  // 3 MiB
    const at::Tensor small = at::arange(100, at::kFloat);
    const std::string path = (dir / "w.safetensors").string();
    aviary::write_safetensors(path, {{"big", big}, {"small", small}});
    const aviary::TensorList back = aviary::read_safetensors(path);
    ASSERT_EQ(back.size(), 2u);
    ASSERT_TRUE(at::equal(back[0].tensor, big));
    ASSERT_TRUE(at::equal(back[1].tensor, small));
    if (!cpu::huge_pages_wanted()) GTEST_SKIP() << "AVIARY_HUGE_PAGES=0: checkpoint tensors come from LibTorch";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(back[0].tensor.data_ptr()) % cpu::kHugePageBytes, 0u);
    const long long own = anon_huge_of_mapping(back[0].tensor.data_ptr());
    ASSERT_GE(own, 0);
    // the mapping holding the tensor's start is its advised whole 2 MiB page (the tail after it is another mapping)
    EXPECT_EQ(cpu::huge_page_bytes({{back[0].tensor.data_ptr(), cpu::kHugePageBytes}}),
              std::min<size_t>(size_t(own), cpu::kHugePageBytes));
    // Only the 2 MiB page the 3 MiB fill whole is advised: with THP on request ("madvise"), no huge page past the
    // data, so of the 4 MiB the buffer spans (two 2 MiB pages) no more than the data's own 3 MiB is resident, by
    // mincore(2) page by page (the advised part and the tail are separate mappings after the advice).
    if (cpu::transparent_huge_pages_mode() == "madvise") {
        EXPECT_LE(own, (long long)cpu::kHugePageBytes);
        const size_t span = 2 * cpu::kHugePageBytes, page = size_t(sysconf(_SC_PAGESIZE));
        std::vector<unsigned char> resident(span / page);
        ASSERT_EQ(mincore(back[0].tensor.data_ptr(), span, resident.data()), 0) << std::strerror(errno);
        size_t in_memory = 0;
        for (unsigned char r : resident) in_memory += (r & 1) ? page : 0;
        EXPECT_LE(in_memory, size_t(3) << 20);
    }
    std::filesystem::remove_all(dir);
}
