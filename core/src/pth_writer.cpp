// write_pth: state dicts in the official torch.save zip format, loadable by torch.load (1.13 and 2.x).
// Layout mirrors torch/serialization.py `_save` + caffe2/serialize/inline_container.cc (PyTorchStreamWriter):
// entries <stem>/data.pkl, <stem>/byteorder, <stem>/data/<i>, <stem>/version = "3\n"; STORED, each entry's data
// 64-byte aligned by an 'FB' padding extra field in its local header; zip64 forms where sizes or offsets reach
// 4 GiB (PKWARE APPNOTE 6.3 §4.3.7, §4.3.12, §4.3.14-16, §4.5.3). The pickle (protocol 2, CPython pickletools
// opcodes) is what torch.save writes for an OrderedDict of tensors: one storage per tensor, offset 0, contiguous.
#include "pth_writer.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "aviary/core/checkpoint.h"
#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "zip_format.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Aviary's checkpoint writers assume a little-endian host");

namespace aviary {

namespace detail {

namespace {

// Slicing-by-8 tables: kCrcTables[0] is the classic byte-wise table; kCrcTables[k][b] advances it k more bytes.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
const CrcTables& crc_tables() {
    static const CrcTables tables = [] {
        CrcTables t{};
        for (uint32_t b = 0; b < 256; ++b) {
            uint32_t c = b;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
            t[0][b] = c;
        }
        for (uint32_t b = 0; b < 256; ++b)
            for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
        return t;
    }();
    return tables;
}

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, uint64_t size) {
    const CrcTables& t = crc_tables();
    const uint8_t* p = static_cast<const uint8_t*>(data);
    uint32_t c = ~crc;
    for (; size >= 8; size -= 8, p += 8) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
            t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    }
    for (; size > 0; --size, ++p) c = (c >> 8) ^ t[0][(c ^ *p) & 0xFF];
    return ~c;
}

}  // namespace detail

namespace {

using namespace detail::zip;                // record signatures and sizes
constexpr uint16_t kExtraPadding = 0x4246;  // "FB": torch's alignment padding field
constexpr uint64_t kAlignment = 64;         // torch's kFieldAlignment: data starts on 64-byte boundaries
constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr uint16_t kMax16 = 0xFFFFu;
constexpr uint16_t kVersionPlain = 20;                  // "version needed to extract": 2.0 for STORED files
constexpr uint16_t kVersionZip64 = 45;                  // 4.5 when zip64 records are used
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, fixed so equal input gives equal bytes
constexpr uint16_t kDosTime = 0;
constexpr size_t kPickleBatch = 1000;  // CPython's _BATCHSIZE for SETITEMS

struct StorageType {
    at::ScalarType dtype;
    const char* name;
};
constexpr StorageType kStorageTypes[] = {
    {at::kFloat, "FloatStorage"},   {at::kHalf, "HalfStorage"}, {at::kBFloat16, "BFloat16Storage"},
    {at::kDouble, "DoubleStorage"}, {at::kLong, "LongStorage"}, {at::kInt, "IntStorage"},
    {at::kByte, "ByteStorage"},     {at::kChar, "CharStorage"}, {at::kBool, "BoolStorage"},
};

const char* storage_type_name(at::ScalarType t) {
    for (const StorageType& s : kStorageTypes)
        if (s.dtype == t) return s.name;
    return nullptr;
}

void put16(std::string& out, uint16_t v) {
    out.push_back(static_cast<char>(v & 0xFF));
    out.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& out, uint32_t v) {
    put16(out, static_cast<uint16_t>(v & 0xFFFF));
    put16(out, static_cast<uint16_t>(v >> 16));
}
void put64(std::string& out, uint64_t v) {
    put32(out, static_cast<uint32_t>(v & kMax32));
    put32(out, static_cast<uint32_t>(v >> 32));
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): Python decodes pickle strings.
bool valid_utf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        size_t len = 0;
        uint32_t cp = 0, min = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// Row-major strides of a contiguous tensor, as torch computes them (a size-0/1 dim counts as 1).
std::vector<int64_t> row_major_strides(at::IntArrayRef sizes) {
    std::vector<int64_t> strides(sizes.size());
    int64_t s = 1;
    for (size_t d = sizes.size(); d-- > 0;) {
        strides[d] = s;
        s *= std::max<int64_t>(sizes[d], 1);
    }
    return strides;
}

// Pickle protocol 2 opcodes, emitted the way CPython's Pickler does for these types (pickletools names).
class PickleWriter {
public:
    void proto2() { op(0x80), out_.push_back(2); }
    void global(const std::string& module, const std::string& name) { op('c'), out_ += module + "\n" + name + "\n"; }
    void binput(uint8_t slot) { op('q'), out_.push_back(static_cast<char>(slot)); }
    void binget(uint8_t slot) { op('h'), out_.push_back(static_cast<char>(slot)); }
    void mark() { op('('); }
    void tuple() { op('t'); }  // TUPLE: everything since the MARK
    void empty_tuple() { op(')'); }
    void reduce() { op('R'); }
    void binpersid() { op('Q'); }
    void newfalse() { op(0x89); }
    void setitem() { op('s'); }
    void setitems() { op('u'); }
    void stop() { op('.'); }
    void str(const std::string& s) {  // BINUNICODE: u32 length + UTF-8 bytes
        op('X');
        put32(out_, static_cast<uint32_t>(s.size()));
        out_ += s;
    }
    void integer(int64_t v) {
        if (v >= 0 && v <= 0xFF) {  // BININT1
            op('K'), out_.push_back(static_cast<char>(v));
        } else if (v >= 0 && v <= 0xFFFF) {  // BININT2
            op('M'), put16(out_, static_cast<uint16_t>(v));
        } else if (v >= INT32_MIN && v <= INT32_MAX) {  // BININT
            op('J'), put32(out_, static_cast<uint32_t>(static_cast<int32_t>(v)));
        } else {  // LONG1: shortest little-endian two's complement
            std::string bytes;
            put64(bytes, static_cast<uint64_t>(v));
            size_t n = 8;
            while (n > 1 && ((bytes[n - 1] == '\0' && (bytes[n - 2] & 0x80) == 0) ||
                             (bytes[n - 1] == '\xff' && (bytes[n - 2] & 0x80) != 0)))
                --n;
            op(0x8a), out_.push_back(static_cast<char>(n)), out_.append(bytes, 0, n);
        }
    }
    // TUPLE1..3 for short tuples, MARK ... TUPLE for longer ones; EMPTY_TUPLE for ().
    void int_tuple(const std::vector<int64_t>& v) {
        if (v.empty()) return empty_tuple();
        if (v.size() > 3) mark();
        for (int64_t x : v) integer(x);
        if (v.size() > 3) return tuple();
        op(static_cast<uint8_t>(0x84 + v.size()));
    }
    const std::string& bytes() const { return out_; }

private:
    void op(uint8_t code) { out_.push_back(static_cast<char>(code)); }
    std::string out_;
};

// data.pkl for an OrderedDict name -> _rebuild_tensor_v2(persistent storage i, 0, size, stride, False, OrderedDict()).
std::string state_dict_pickle(const TensorList& tensors) {
    // Memo slots: 0 OrderedDict, 1 _rebuild_tensor_v2, 2 'storage', 3 'cpu', then each storage type on first use.
    enum : uint8_t { kSlotOrderedDict, kSlotRebuild, kSlotStorage, kSlotCpu, kSlotFirstType };
    std::unordered_map<int, uint8_t> type_slot;
    PickleWriter p;
    p.proto2();
    p.global("collections", "OrderedDict");
    p.binput(kSlotOrderedDict);
    p.empty_tuple();
    p.reduce();
    for (size_t begin = 0; begin < tensors.size(); begin += kPickleBatch) {
        const size_t end = std::min(tensors.size(), begin + kPickleBatch);
        if (end - begin > 1) p.mark();
        for (size_t i = begin; i < end; ++i) {
            const at::Tensor& t = tensors[i].tensor;
            p.str(tensors[i].name);
            if (i == 0) {
                p.global("torch._utils", "_rebuild_tensor_v2");
                p.binput(kSlotRebuild);
            } else {
                p.binget(kSlotRebuild);
            }
            p.mark();  // the arguments of _rebuild_tensor_v2
            // persistent id ('storage', torch.<Type>Storage, '<i>', 'cpu', numel)
            p.mark();
            if (i == 0) {
                p.str("storage");
                p.binput(kSlotStorage);
            } else {
                p.binget(kSlotStorage);
            }
            const int type = static_cast<int>(t.scalar_type());
            auto it = type_slot.find(type);
            if (it == type_slot.end()) {
                const uint8_t slot = static_cast<uint8_t>(kSlotFirstType + type_slot.size());
                p.global("torch", storage_type_name(t.scalar_type()));
                p.binput(slot);
                type_slot.emplace(type, slot);
            } else {
                p.binget(it->second);
            }
            p.str(std::to_string(i));
            if (i == 0) {
                p.str("cpu");
                p.binput(kSlotCpu);
            } else {
                p.binget(kSlotCpu);
            }
            p.integer(t.numel());
            p.tuple();
            p.binpersid();
            p.integer(0);  // storage_offset
            p.int_tuple(t.sizes().vec());
            p.int_tuple(row_major_strides(t.sizes()));
            p.newfalse();                // requires_grad
            p.binget(kSlotOrderedDict);  // backward_hooks = OrderedDict()
            p.empty_tuple();
            p.reduce();
            p.tuple();
            p.reduce();
        }
        if (end - begin > 1) {
            p.setitems();
        } else {
            p.setitem();  // CPython writes a batch of one as SETITEM
        }
    }
    p.stop();
    return p.bytes();
}

// The archive's top folder: torch uses the file name without its extension; odd names fall back to "archive".
std::string archive_stem(const std::string& path) {
    const std::string stem = std::filesystem::path(path).stem().string();
    const bool plain =
        !stem.empty() && stem != "." && stem != ".." && std::all_of(stem.begin(), stem.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                   c == '.';
        });
    return plain ? stem : "archive";
}

// Streams STORED entries to a file descriptor and ends them with the central directory.
class ZipWriter {
public:
    ZipWriter(AtomicFile& file, bool force_zip64) : file_(file), force_zip64_(force_zip64) {}

    void add(const std::string& name, const void* data, uint64_t size) {
        const uint32_t crc = detail::crc32_update(0, data, size);
        const bool zip64 = force_zip64_ || size >= kMax32;
        // Local extra field: zip64 sizes (both, when used), then 'FB' padding up to the next 64-byte boundary.
        std::string extra;
        if (zip64) {
            put16(extra, kExtraZip64), put16(extra, 16), put64(extra, size), put64(extra, size);
        }
        const uint64_t start = pos_ + kSizeLocalHeader + name.size() + extra.size() + 4;
        const uint64_t pad = (kAlignment - start % kAlignment) % kAlignment;
        put16(extra, kExtraPadding), put16(extra, static_cast<uint16_t>(pad)), extra.append(pad, 'Z');

        std::string h;
        put32(h, kSigLocalHeader);
        put16(h, zip64 ? kVersionZip64 : kVersionPlain);
        put16(h, 0);  // flags: no data descriptor, sizes and CRC are known up front
        put16(h, 0);  // method: STORED
        put16(h, kDosTime), put16(h, kDosDate);
        put32(h, crc);
        put32(h, zip64 ? kMax32 : static_cast<uint32_t>(size));
        put32(h, zip64 ? kMax32 : static_cast<uint32_t>(size));
        put16(h, static_cast<uint16_t>(name.size()));
        put16(h, static_cast<uint16_t>(extra.size()));
        h += name + extra;
        entries_.push_back(Entry{name, crc, size, pos_});
        write(h.data(), h.size());
        write(data, size);
    }

    void finish() {
        const uint64_t cd_offset = pos_;
        std::string cd;
        for (const Entry& e : entries_) {
            const bool big_size = force_zip64_ || e.size >= kMax32;
            const bool big_offset = force_zip64_ || e.offset >= kMax32;
            std::string extra;  // zip64: only the fields whose 32-bit slot says 0xFFFFFFFF, in this order
            if (big_size || big_offset) {
                put16(extra, kExtraZip64), put16(extra, static_cast<uint16_t>(8 * (2 * big_size + big_offset)));
                if (big_size) put64(extra, e.size), put64(extra, e.size);  // uncompressed, compressed
                if (big_offset) put64(extra, e.offset);
            }
            const uint16_t version = extra.empty() ? kVersionPlain : kVersionZip64;
            put32(cd, kSigCentralHeader);
            put16(cd, version);          // made by (host 0 = MS-DOS attributes)
            put16(cd, version);          // needed to extract
            put16(cd, 0), put16(cd, 0);  // flags, method
            put16(cd, kDosTime), put16(cd, kDosDate);
            put32(cd, e.crc);
            put32(cd, big_size ? kMax32 : static_cast<uint32_t>(e.size));
            put32(cd, big_size ? kMax32 : static_cast<uint32_t>(e.size));
            put16(cd, static_cast<uint16_t>(e.name.size()));
            put16(cd, static_cast<uint16_t>(extra.size()));
            put16(cd, 0), put16(cd, 0), put16(cd, 0);  // comment length, disk, internal attributes
            put32(cd, 0);                              // external attributes
            put32(cd, big_offset ? kMax32 : static_cast<uint32_t>(e.offset));
            cd += e.name + extra;
        }
        const uint64_t count = entries_.size(), cd_size = cd.size();
        const bool zip64 = force_zip64_ || count >= kMax16 || cd_size >= kMax32 || cd_offset >= kMax32;
        if (zip64) {
            const uint64_t z64_offset = cd_offset + cd_size;
            put32(cd, kSigZip64Eocd);
            put64(cd, 44);  // size of the rest of this record
            put16(cd, kVersionZip64), put16(cd, kVersionZip64);
            put32(cd, 0), put32(cd, 0);  // this disk, disk with the central directory
            put64(cd, count), put64(cd, count), put64(cd, cd_size), put64(cd, cd_offset);
            put32(cd, kSigZip64Locator);
            put32(cd, 0), put64(cd, z64_offset), put32(cd, 1);  // disk, zip64 end record offset, total disks
        }
        put32(cd, kSigEocd);
        put16(cd, 0), put16(cd, 0);  // this disk, disk with the central directory
        const uint16_t count16 = zip64 ? kMax16 : static_cast<uint16_t>(count);
        put16(cd, count16), put16(cd, count16);
        put32(cd, zip64 ? kMax32 : static_cast<uint32_t>(cd_size));
        put32(cd, zip64 ? kMax32 : static_cast<uint32_t>(cd_offset));
        put16(cd, 0);  // comment length
        write(cd.data(), cd.size());
    }

private:
    struct Entry {
        std::string name;
        uint32_t crc;
        uint64_t size;
        uint64_t offset;  // of the local header
    };

    void write(const void* data, uint64_t n) {
        pos_ += n;
        file_.write(data, static_cast<size_t>(n));
    }

    AtomicFile& file_;
    bool force_zip64_;
    uint64_t pos_ = 0;
    std::vector<Entry> entries_;
};

}  // namespace

namespace detail {

void write_pth_with(const std::string& path, const TensorList& tensors, const PthWriteOptions& options) {
    // Everything that can be refused is checked before a file is created.
    std::unordered_set<std::string> names;
    for (const NamedTensor& nt : tensors) {
        AVIARY_CHECK(nt.tensor.defined(), path, ": tensor '", nt.name, "' is undefined; nothing to write");
        AVIARY_CHECK(names.insert(nt.name).second, path, ": tensor '", nt.name, "' appears twice in the list");
        AVIARY_CHECK(valid_utf8(nt.name), path, ": tensor names must be valid UTF-8 (a Python str); got '", nt.name,
                     "'");
        AVIARY_CHECK(nt.tensor.layout() == at::kStrided, path, ": tensor '", nt.name, "' has layout ",
                     nt.tensor.layout(), "; expected a dense (strided) tensor");
        AVIARY_CHECK(storage_type_name(nt.tensor.scalar_type()) != nullptr, path, ": tensor '", nt.name, "' has dtype ",
                     nt.tensor.scalar_type(),
                     "; expected float32/float16/bfloat16/float64/int64/int32/int8/uint8/bool");
    }
    const std::string pickle = state_dict_pickle(tensors);
    const std::string stem = archive_stem(path);

    AtomicFile file(path);
    ZipWriter zip(file, options.force_zip64);
    zip.add(stem + "/data.pkl", pickle.data(), pickle.size());
    zip.add(stem + "/byteorder", "little", 6);
    for (size_t i = 0; i < tensors.size(); ++i) {
        // One tensor at a time keeps peak memory low; its bytes are row-major, matching the pickled strides.
        const at::Tensor t = tensors[i].tensor.to(at::kCPU).contiguous();
        zip.add(stem + "/data/" + std::to_string(i), t.numel() > 0 ? t.data_ptr() : nullptr,
                static_cast<uint64_t>(t.numel()) * t.element_size());
    }
    zip.add(stem + "/version", "3\n", 2);
    zip.finish();
    file.commit();
}

}  // namespace detail

void write_pth(const std::string& path, const TensorList& tensors) {
    detail::write_pth_with(path, tensors, detail::PthWriteOptions{});
}

}  // namespace aviary
