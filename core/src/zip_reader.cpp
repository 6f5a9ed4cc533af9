// Minimal ZIP reader for torch.save archives: memory-maps the file, finds the end-of-central-directory record
// (and the zip64 locator/record when present), walks the central directory, and hands out STORED entry bytes.
// Layouts follow PKWARE APPNOTE 6.3 §4.3 (local header, central directory header, EOCD, zip64 EOCD + locator,
// zip64 extended information extra field 0x0001). Every size and offset is checked against the file size.
#include "zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "aviary/core/error.h"
#include "zip_format.h"

namespace aviary::detail {

namespace {

using namespace zip;  // record signatures and sizes
constexpr uint64_t kMaxComment = 0xFFFF;

uint16_t le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t le32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const uint8_t* p) {
    return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

// True when [offset, offset + length) lies inside a file of `size` bytes (no overflow).
bool in_file(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    AVIARY_CHECK(fd >= 0, path, ": cannot open for reading (", std::strerror(errno), ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        AVIARY_FAIL(path, ": cannot stat (", std::strerror(err), ")");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        AVIARY_FAIL(path, ": expected a regular file (is it a directory?)");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            AVIARY_FAIL(path, ": cannot memory-map ", size_, " bytes (", std::strerror(err), ")");
        }
        data_ = static_cast<const uint8_t*>(p);
        mapped_ = true;
    }
    ::close(fd);
}

MappedFile::MappedFile(const uint8_t* data, uint64_t size, std::string name)
    : path_(std::move(name)), data_(size > 0 ? data : nullptr), size_(size) {}

void MappedFile::release(const void* p, uint64_t n) const {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    if (!mapped_ || n == 0 || b < data_ || b + n > data_ + size_) return;
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    // whole pages inside the range only: a page shared with a neighbouring tensor stays
    const uint64_t lo = (static_cast<uint64_t>(b - data_) + page - 1) / page * page;
    const uint64_t hi = static_cast<uint64_t>(b - data_ + n) / page * page;
    if (hi > lo) ::madvise(const_cast<uint8_t*>(data_) + lo, hi - lo, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

ZipReader::ZipReader(const MappedFile& file) : file_(file) {
    const uint8_t* base = file.data();
    const uint64_t size = file.size();
    const std::string& path = file.path();
    AVIARY_CHECK(size >= kSizeEocd, path, ": not a zip archive (", size, " bytes is shorter than an end record)");

    // The EOCD record sits at the end, followed only by its comment (at most 64 KiB). Scan backwards for a
    // signature whose comment length reaches exactly the end of the file.
    uint64_t pos_eocd = UINT64_MAX;
    const uint64_t lowest = size - kSizeEocd > kMaxComment ? size - kSizeEocd - kMaxComment : 0;
    for (uint64_t pos = size - kSizeEocd + 1; pos-- > lowest;) {
        if (le32(base + pos) == kSigEocd && pos + kSizeEocd + le16(base + pos + 20) == size) {
            pos_eocd = pos;
            break;
        }
    }
    AVIARY_CHECK(pos_eocd != UINT64_MAX, path,
                 ": not a complete zip archive (no end-of-central-directory record; truncated download?)");
    const uint8_t* eocd = base + pos_eocd;
    uint64_t count = le16(eocd + 10);
    uint64_t cd_size = le32(eocd + 12);
    uint64_t cd_offset = le32(eocd + 16);
    AVIARY_CHECK(le16(eocd + 4) == 0 || le16(eocd + 4) == 0xFFFF, path, ": multi-disk zip archives are not supported");

    // zip64: a locator just before the EOCD points at the zip64 EOCD record with 64-bit counts and offsets.
    if (pos_eocd >= kSizeZip64Locator && le32(base + pos_eocd - kSizeZip64Locator) == kSigZip64Locator) {
        const uint8_t* loc = base + pos_eocd - kSizeZip64Locator;
        uint64_t pos_z = le64(loc + 8);
        AVIARY_CHECK(in_file(pos_z, kSizeZip64Eocd, pos_eocd - kSizeZip64Locator), path, ": zip64 end record offset ",
                     pos_z, " is outside the file (corrupt or truncated archive)");
        const uint8_t* z = base + pos_z;
        AVIARY_CHECK(le32(z) == kSigZip64Eocd, path, ": zip64 locator does not point at a zip64 end record");
        count = le64(z + 32);
        cd_size = le64(z + 40);
        cd_offset = le64(z + 48);
    } else {
        AVIARY_CHECK(count != 0xFFFF && cd_size != 0xFFFFFFFF && cd_offset != 0xFFFFFFFF, path,
                     ": zip end record asks for zip64 but the zip64 locator is missing (corrupt archive)");
    }
    AVIARY_CHECK(in_file(cd_offset, cd_size, pos_eocd), path, ": central directory (offset ", cd_offset, ", ", cd_size,
                 " bytes) lies outside the file (corrupt or truncated archive)");
    AVIARY_CHECK(count <= cd_size / kSizeCentralHeader, path, ": central directory claims ", count, " entries in ",
                 cd_size, " bytes (corrupt archive)");

    std::unordered_set<std::string> names;
    entries_.reserve(count);
    uint64_t pos = cd_offset;
    const uint64_t cd_end = cd_offset + cd_size;
    for (uint64_t i = 0; i < count; ++i) {
        AVIARY_CHECK(in_file(pos, kSizeCentralHeader, cd_end) && le32(base + pos) == kSigCentralHeader, path,
                     ": central directory entry ", i, " is malformed (corrupt archive)");
        const uint8_t* h = base + pos;
        ZipEntry e;
        e.flags = le16(h + 8);
        e.method = le16(h + 10);
        e.size_compressed = le32(h + 20);
        e.size_uncompressed = le32(h + 24);
        const uint64_t len_name = le16(h + 28), len_extra = le16(h + 30), len_comment = le16(h + 32);
        const uint16_t disk = le16(h + 34);
        e.offset_local_header = le32(h + 42);
        AVIARY_CHECK(in_file(pos + kSizeCentralHeader, len_name + len_extra + len_comment, cd_end), path,
                     ": central directory entry ", i, " runs past the directory (corrupt archive)");
        e.name.assign(reinterpret_cast<const char*>(h + kSizeCentralHeader), len_name);

        // zip64 extended information: only the fields whose 32-bit slot holds 0xFFFFFFFF are present, in order.
        const uint8_t* extra = h + kSizeCentralHeader + len_name;
        for (uint64_t off = 0; off + 4 <= len_extra;) {
            const uint16_t id = le16(extra + off), len = le16(extra + off + 2);
            AVIARY_CHECK(off + 4 + len <= len_extra, path, ": extra field of entry '", e.name, "' is malformed");
            if (id == kExtraZip64) {
                const uint8_t* f = extra + off + 4;
                uint64_t used = 0;
                auto take = [&](uint64_t& field) {
                    AVIARY_CHECK(used + 8 <= len, path, ": zip64 extra field of entry '", e.name, "' is too short");
                    field = le64(f + used);
                    used += 8;
                };
                if (e.size_uncompressed == 0xFFFFFFFF) take(e.size_uncompressed);
                if (e.size_compressed == 0xFFFFFFFF) take(e.size_compressed);
                if (e.offset_local_header == 0xFFFFFFFF) take(e.offset_local_header);
            }
            off += 4 + len;
        }
        AVIARY_CHECK(disk == 0 || disk == 0xFFFF, path, ": entry '", e.name, "' is on another disk (multi-disk zip)");
        AVIARY_CHECK(names.insert(e.name).second, path, ": zip archive has two entries named '", e.name, "'");
        entries_.push_back(std::move(e));
        pos += kSizeCentralHeader + len_name + len_extra + len_comment;
    }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
    for (const ZipEntry& e : entries_)
        if (e.name == name) return &e;
    return nullptr;
}

ZipBytes ZipReader::read(const ZipEntry& entry) const {
    const std::string& path = file_.path();
    AVIARY_CHECK((entry.flags & 1) == 0, path, ": zip entry '", entry.name, "' is encrypted; expected plain data");
    AVIARY_CHECK(entry.method == 0, path, ": zip entry '", entry.name, "' is compressed (method ", entry.method,
                 "); expected STORED entries as torch.save writes them — re-save the checkpoint with torch.save");
    AVIARY_CHECK(entry.size_compressed == entry.size_uncompressed, path, ": stored zip entry '", entry.name,
                 "' has different compressed and uncompressed sizes (corrupt archive)");
    const uint8_t* base = file_.data();
    const uint64_t size = file_.size();
    AVIARY_CHECK(in_file(entry.offset_local_header, kSizeLocalHeader, size) &&
                     le32(base + entry.offset_local_header) == kSigLocalHeader,
                 path, ": local header of zip entry '", entry.name, "' is missing (corrupt or truncated archive)");
    const uint8_t* h = base + entry.offset_local_header;
    // The local header carries its own name and extra lengths (torch pads the extra field to align the data).
    const uint64_t data_offset = entry.offset_local_header + kSizeLocalHeader + le16(h + 26) + le16(h + 28);
    AVIARY_CHECK(in_file(data_offset, entry.size_compressed, size), path, ": data of zip entry '", entry.name, "' (",
                 entry.size_compressed, " bytes at offset ", data_offset,
                 ") runs past the end of the file (truncated archive)");
    return ZipBytes{base + data_offset, entry.size_compressed};
}

}  // namespace aviary::detail
