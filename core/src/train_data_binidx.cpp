// RWKV-LM / Megatron binidx token files (train_data.h): a memory-mapped reader (one
// index parser and token stream for files and for bytes in memory) and an atomic writer. Format facts from RWKV-LM
// RWKV-v5/src/binidx.py (MMapIndexedDataset.Index): 9-byte magic, u64 version 1, u8 dtype code, u64 count, u64
// doc-index count, i32 sizes, i64 byte pointers, i64 doc_idx; little endian.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/train_data.h"

namespace aviary {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;

int dtype_size(int code) {
    switch (code) {
        case 1:
            return 1;  // uint8
        case 4:
            return 4;  // int32
        case 8:
            return 2;  // uint16
        default:
            return 0;
    }
}

uint64_t read_u64(const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

std::string read_whole(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    AVIARY_CHECK(f != nullptr, "cannot open '", path, "': ", std::strerror(errno));
    std::string bytes;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
    const bool err = std::ferror(f);
    std::fclose(f);
    AVIARY_CHECK(!err, "cannot read '", path, "'");
    return bytes;
}

// What a reader needs of a parsed .idx.
struct BinIdxHeader {
    int item = 0;  // bytes per token
    int64_t n_sequences = 0;
    uint64_t need = 0;  // .bin bytes the last sequence reaches
};

BinIdxHeader parse_index(std::string_view idx, const std::string& idx_path) {
    const auto* p = reinterpret_cast<const unsigned char*>(idx.data());
    AVIARY_CHECK(idx.size() >= kHeaderBytes, "'", idx_path, "' is truncated: ", idx.size(),
                 " bytes, a binidx header needs ", kHeaderBytes);
    AVIARY_CHECK(std::memcmp(p, kMagic, 9) == 0, "'", idx_path, "' is not a binidx index (magic MMIDIDX missing)");
    const uint64_t version = read_u64(p + 9);
    AVIARY_CHECK(version == 1, "'", idx_path, "': binidx version ", version, " (expected 1)");
    const int dtype_code = p[17];
    BinIdxHeader h;
    h.item = dtype_size(dtype_code);
    AVIARY_CHECK(h.item > 0, "'", idx_path, "': token dtype code ", dtype_code,
                 " is not supported (expected 8 = uint16, 4 = int32 or 1 = uint8)");
    const uint64_t n = read_u64(p + 18), n_doc = read_u64(p + 26);
    AVIARY_CHECK(n < (uint64_t(1) << 40) && n_doc < (uint64_t(1) << 40), "'", idx_path, "': implausible counts");
    const uint64_t want = kHeaderBytes + n * 4 + n * 8 + n_doc * 8;
    AVIARY_CHECK(idx.size() == want, "'", idx_path, "' is truncated or corrupt: ", idx.size(),
                 " bytes, its header announces ", n, " sequences and ", n_doc, " documents (", want, " bytes)");
    // The last sequence must lie inside the .bin.
    if (n > 0) {
        int32_t last_size;
        int64_t last_ptr;
        std::memcpy(&last_size, p + kHeaderBytes + (n - 1) * 4, 4);
        std::memcpy(&last_ptr, p + kHeaderBytes + n * 4 + (n - 1) * 8, 8);
        AVIARY_CHECK(last_size >= 0 && last_ptr >= 0, "'", idx_path, "': negative size or pointer");
        h.need = uint64_t(last_ptr) + uint64_t(last_size) * h.item;
    }
    h.n_sequences = static_cast<int64_t>(n);
    return h;
}

void check_bin_size(uint64_t bytes, const BinIdxHeader& h, const std::string& bin_path) {
    AVIARY_CHECK(bytes >= h.need && bytes % h.item == 0, "'", bin_path, "' is truncated: ", bytes,
                 " bytes, the index needs ", h.need, " (a multiple of ", h.item, ")");
}

// The token stream of a checked binidx over `bytes` bytes of .bin at `base`, which a subclass owns (a mapping of the
// file, or the bytes in memory).
class BinIdxSource : public TokenSource {
public:
    BinIdxSource(std::string prefix, const BinIdxHeader& header) : prefix_(std::move(prefix)), header_(header) {}
    int64_t size() const override { return static_cast<int64_t>(bytes_ / header_.item); }
    void read(int64_t offset, int64_t count, int64_t* out) const override {
        AVIARY_CHECK(offset >= 0 && count >= 0 && offset + count <= size(), "read past the end of '", prefix_, ".bin'");
        for (int64_t i = 0; i < count; ++i) out[i] = token(offset + i);
    }
    int64_t max_token() const override {
        if (max_ < 0) {
            int64_t m = 0;
            for (int64_t i = 0, n = size(); i < n; ++i) m = std::max(m, token(i));
            max_ = m;
        }
        return max_;
    }
    std::string describe() const override {
        return prefix_ + " (binidx, " + std::to_string(header_.n_sequences) + " sequences, " + std::to_string(size()) +
               " tokens)";
    }

protected:
    const BinIdxHeader& header() const { return header_; }
    const unsigned char* base_ = nullptr;
    uint64_t bytes_ = 0;

private:
    int64_t token(int64_t i) const {
        const unsigned char* q = base_ + i * header_.item;
        if (header_.item == 2) return int64_t(q[0]) | (int64_t(q[1]) << 8);
        if (header_.item == 1) return q[0];
        int32_t v;
        std::memcpy(&v, q, 4);
        return v;
    }
    std::string prefix_;
    BinIdxHeader header_;
    mutable int64_t max_ = -1;
};

// PREFIX.idx read whole, PREFIX.bin memory-mapped.
class MappedBinIdx final : public BinIdxSource {
public:
    explicit MappedBinIdx(const std::string& prefix)
        : BinIdxSource(prefix, parse_index(read_whole(prefix + ".idx"), prefix + ".idx")) {
        const std::string bin_path = prefix + ".bin";
        const int fd = ::open(bin_path.c_str(), O_RDONLY | O_CLOEXEC);
        AVIARY_CHECK(fd >= 0, "cannot open '", bin_path, "': ", std::strerror(errno));
        struct stat st {};
        ::fstat(fd, &st);
        const uint64_t bytes = static_cast<uint64_t>(st.st_size);
        void* map = nullptr;
        try {
            check_bin_size(bytes, header(), bin_path);
            if (bytes > 0) {
                map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
                AVIARY_CHECK(map != MAP_FAILED, "cannot map '", bin_path, "': ", std::strerror(errno));
            }
        } catch (...) {
            ::close(fd);
            throw;
        }
        ::close(fd);  // the mapping stays valid
        base_ = static_cast<const unsigned char*>(map);
        bytes_ = bytes;
    }
    ~MappedBinIdx() override {
        if (base_ != nullptr) ::munmap(const_cast<unsigned char*>(base_), bytes_);
    }
};

// The .idx and .bin bytes given in memory (open_binidx_bytes).
class MemoryBinIdx final : public BinIdxSource {
public:
    MemoryBinIdx(std::string_view idx, std::string bin, const std::string& prefix)
        : BinIdxSource(prefix, parse_index(idx, prefix + ".idx")), bin_(std::move(bin)) {
        check_bin_size(bin_.size(), header(), prefix + ".bin");
        base_ = reinterpret_cast<const unsigned char*>(bin_.data());
        bytes_ = bin_.size();
    }

private:
    std::string bin_;
};

template <class T>
void put_le(std::string& s, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) s.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
}

}  // namespace

std::string binidx_prefix(const std::string& path) {
    for (const char* ext : {".idx", ".bin"}) {
        const std::string e(ext);
        if (path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0)
            return path.substr(0, path.size() - e.size());
    }
    return path;
}

std::string binidx_tokenizer_record_path(const std::string& prefix) {
    return binidx_prefix(prefix) + ".tokenizer.json";
}

bool is_binidx(const std::string& path) {
    namespace fs = std::filesystem;
    const std::string prefix = binidx_prefix(path);
    return fs::is_regular_file(prefix + ".idx") && !fs::is_directory(path);
}

std::unique_ptr<TokenSource> open_binidx(const std::string& prefix) {
    return std::make_unique<MappedBinIdx>(binidx_prefix(prefix));
}

std::unique_ptr<TokenSource> open_binidx_bytes(std::string_view idx, std::string bin, const std::string& prefix) {
    return std::make_unique<MemoryBinIdx>(idx, std::move(bin), binidx_prefix(prefix));
}

BinIdxBuildStats build_binidx(const std::string& corpus, const std::string& out_prefix, const TextEncoder& encoder,
                              const std::function<bool(uint64_t, uint64_t)>& on_progress) {
    const std::string prefix = binidx_prefix(out_prefix);
    const bool wide = encoder.vocab_size > 65536;
    const int item = wide ? 4 : 2;
    AtomicFile bin(prefix + ".bin");
    std::vector<int32_t> sizes;
    BinIdxBuildStats stats;
    std::string buf;
    for_each_document(
        corpus,
        [&](std::string_view text) {
            std::vector<int32_t> ids = encoder.encode(text);
            ids.push_back(0);  // end of document (RWKV-LM json2binidx appends the
                               // end-of-text id 0)
            buf.clear();
            for (int32_t id : ids) {
                if (wide)
                    put_le<uint32_t>(buf, static_cast<uint32_t>(id));
                else
                    put_le<uint16_t>(buf, static_cast<uint16_t>(id));
            }
            bin.write(buf.data(), buf.size());
            AVIARY_CHECK(ids.size() < (size_t(1) << 31), "a document of ", ids.size(),
                         " tokens is too long for binidx");
            sizes.push_back(static_cast<int32_t>(ids.size()));
            stats.documents += 1;
            stats.tokens += static_cast<int64_t>(ids.size());
            stats.bytes += text.size();
        },
        on_progress);

    std::string idx(kMagic, 9);
    put_le<uint64_t>(idx, 1);                         // version
    idx.push_back(static_cast<char>(wide ? 4 : 8));   // dtype code: 8 = uint16, 4 = int32
    put_le<uint64_t>(idx, sizes.size());              // sequences
    put_le<uint64_t>(idx, sizes.size() + 1);          // doc_idx entries: 0, 1, …, n
    for (int32_t s : sizes) put_le<int32_t>(idx, s);  // sizes (i32)
    int64_t address = 0;
    for (int32_t s : sizes) {  // byte pointers (i64)
        put_le<int64_t>(idx, address);
        address += int64_t(s) * item;
    }
    for (size_t d = 0; d <= sizes.size(); ++d) put_le<int64_t>(idx, int64_t(d));  // doc_idx (i64)
    AtomicFile idx_file(prefix + ".idx");
    idx_file.write(idx.data(), idx.size());
    // The record first: an .idx is never visible without it.
    const std::string record = "{\"format\": \"aviary-binidx-tokenizer\", \"tokenizer\": \"" + encoder.kind +
                               "\", \"vocab_size\": " + std::to_string(encoder.vocab_size) + "}\n";
    AtomicFile record_file(binidx_tokenizer_record_path(prefix));
    record_file.write(record.data(), record.size());
    record_file.commit();
    bin.commit();
    idx_file.commit();
    return stats;
}

}  // namespace aviary
