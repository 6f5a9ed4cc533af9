// Internal: a read-only memory-mapped file and a minimal ZIP reader for torch.save archives (STORED entries
// only; zip64 extra fields and zip64 end-of-central-directory records). Follows the PKWARE APPNOTE 6.3
// layouts (local header, central directory, EOCD, zip64 EOCD + locator); every offset is checked against
// the file size. Used by pth_reader.cpp and safetensors.cpp; not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aviary::detail {

// The whole file mapped read-only (an empty file maps to size 0 with a null pointer), or a view of bytes already in
// memory (read_checkpoint_bytes; the fuzzer's heap copy, so ASan sees a read past the end): the readers take either.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    // A view of `size` bytes at `data` that the caller owns and keeps alive; `name` stands for the file in errors.
    MappedFile(const uint8_t* data, uint64_t size, std::string name);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    // Hands the pages of [p, p + n) (a range inside the mapping) back to the kernel once their bytes have been copied
    // out: the mapping stays valid (a later read faults them in again from the file), but a reader that copies each
    // tensor out and releases it keeps its resident memory at the copies, not copies + file (measured: a 3.8 GB bf16
    // VisualRWKV file peaked at 7.4 GB without it). Nothing for a view of memory.
    void release(const void* p, uint64_t n) const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    bool mapped_ = false;  // false: a view of the caller's memory (or an empty file), nothing to unmap
};

struct ZipEntry {
    std::string name;
    uint16_t method = 0;  // 0 = STORED; anything else is refused when the entry is read
    uint16_t flags = 0;   // general purpose bit flags (bit 0 = encrypted)
    uint64_t size_compressed = 0;
    uint64_t size_uncompressed = 0;
    uint64_t offset_local_header = 0;  // where the local header starts
};

struct ZipBytes {
    const uint8_t* data;
    uint64_t size;
};

class ZipReader {
public:
    // Parses the central directory of `file` (which must outlive the reader). Throws aviary::Error.
    explicit ZipReader(const MappedFile& file);

    const std::vector<ZipEntry>& entries() const { return entries_; }
    // nullptr when absent.
    const ZipEntry* find(const std::string& name) const;
    // The stored bytes of an entry (a view into the mapped file); refuses compressed or encrypted entries.
    ZipBytes read(const ZipEntry& entry) const;

private:
    const MappedFile& file_;
    std::vector<ZipEntry> entries_;
};

}  // namespace aviary::detail
