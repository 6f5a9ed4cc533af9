// safetensors reading and writing (Aviary's native checkpoint format). Layout per the format description in
// huggingface/safetensors README: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section (offsets relative to it).
// The writer pads the header with spaces to a multiple of 8, keeps list order, and replaces files atomically.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "aviary/core/checkpoint.h"
#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "checkpoint_readers.h"
#include "zip_reader.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Aviary's safetensors code assumes a little-endian host");

namespace aviary {

namespace {

constexpr uint64_t kMaxHeader = 100ull * 1000 * 1000;  // the official readers' limit (100 MB)
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeName {
    const char* name;
    at::ScalarType dtype;
};
constexpr DtypeName kDtypes[] = {
    {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"F64", at::kDouble}, {"I64", at::kLong},
    {"I32", at::kInt},   {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool},
};

const char* dtype_to_name(at::ScalarType t) {
    for (const DtypeName& d : kDtypes)
        if (d.dtype == t) return d.name;
    return nullptr;
}

// A non-negative integer from the header, or an error naming the tensor and field.
uint64_t header_uint(const nlohmann::ordered_json& v, const std::string& path, const std::string& name,
                     const char* field) {
    AVIARY_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), path, ": tensor '", name,
                 "': ", field, " should hold non-negative integers");
    return v.get<uint64_t>();
}

struct HeaderEntry {
    std::string name;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
};

}  // namespace

TensorList read_safetensors(const std::string& path, Metadata* metadata) {
    const detail::MappedFile file(path);
    return detail::read_safetensors(file, metadata);
}

TensorList detail::read_safetensors(const MappedFile& file, Metadata* metadata) {
    if (metadata != nullptr) metadata->clear();
    const std::string& path = file.path();
    const uint64_t size = file.size();
    AVIARY_CHECK(size >= 8, path, ": ", size, " bytes is too short for a safetensors file (8-byte header length)");
    uint64_t header_len = 0;
    std::memcpy(&header_len, file.data(), 8);
    AVIARY_CHECK(header_len <= kMaxHeader, path, ": safetensors header length ", header_len,
                 " exceeds the 100 MB limit (not a safetensors file, or corrupt)");
    AVIARY_CHECK(header_len <= size - 8, path, ": safetensors header length ", header_len, " runs past the file (",
                 size, " bytes; truncated?)");
    const char* header = reinterpret_cast<const char*>(file.data() + 8);
    AVIARY_CHECK(header_len >= 2 && header[0] == '{', path, ": safetensors header should be a JSON object");

    // Parse keeping file order; catch duplicate top-level names (nlohmann would silently keep the last).
    std::set<std::string> seen;
    std::string duplicate;
    auto on_event = [&](int depth, nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed) {
        if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key && parsed.is_string()) {
            const std::string key = parsed.get<std::string>();
            if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
        }
        return true;
    };
    nlohmann::ordered_json json;
    try {
        json = nlohmann::ordered_json::parse(header, header + header_len, on_event);
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL(path, ": safetensors header is not valid JSON (", e.what(), ")");
    }
    AVIARY_CHECK(json.is_object(), path, ": safetensors header should be a JSON object");
    AVIARY_CHECK(duplicate.empty(), path, ": safetensors header names tensor '", duplicate, "' twice");

    const uint64_t data_size = size - 8 - header_len;
    const uint8_t* data = file.data() + 8 + header_len;
    std::vector<HeaderEntry> entries;
    for (const auto& [name, info] : json.items()) {
        if (name == kMetadataKey) {
            AVIARY_CHECK(info.is_object(), path, ": safetensors __metadata__ should be an object of strings");
            for (const auto& [k, v] : info.items()) {
                AVIARY_CHECK(v.is_string(), path, ": safetensors __metadata__ entry '", k, "' should be a string");
                if (metadata != nullptr) (*metadata)[k] = v.get<std::string>();
            }
            continue;
        }
        AVIARY_CHECK(info.is_object(), path, ": tensor '", name, "' should be described by an object");
        AVIARY_CHECK(info.contains("dtype") && info["dtype"].is_string(), path, ": tensor '", name,
                     "' has no dtype string");
        const std::string dtype_name = info["dtype"].get<std::string>();
        const DtypeName* d = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                          [&](const DtypeName& x) { return dtype_name == x.name; });
        AVIARY_CHECK(d != std::end(kDtypes), path, ": tensor '", name, "' has dtype '", dtype_name,
                     "'; expected one of F32, F16, BF16, F64, I64, I32, I8, U8, BOOL");
        AVIARY_CHECK(info.contains("shape") && info["shape"].is_array(), path, ": tensor '", name,
                     "' has no shape array");
        AVIARY_CHECK(
            info.contains("data_offsets") && info["data_offsets"].is_array() && info["data_offsets"].size() == 2, path,
            ": tensor '", name, "' should have data_offsets [begin, end]");
        HeaderEntry e{name, d->dtype, {}, 0, 0};
        uint64_t numel = 1;
        for (const auto& dim : info["shape"]) {
            const uint64_t n = header_uint(dim, path, name, "shape");
            AVIARY_CHECK(n <= static_cast<uint64_t>(INT64_MAX) && !__builtin_mul_overflow(numel, n, &numel), path,
                         ": tensor '", name, "' shape is too large");
            e.shape.push_back(static_cast<int64_t>(n));
        }
        e.begin = header_uint(info["data_offsets"][0], path, name, "data_offsets");
        e.end = header_uint(info["data_offsets"][1], path, name, "data_offsets");
        AVIARY_CHECK(e.begin <= e.end && e.end <= data_size, path, ": tensor '", name, "' data_offsets [", e.begin,
                     ", ", e.end, "] lie outside the data section of ", data_size, " bytes (truncated or corrupt)");
        uint64_t nbytes = 0;
        AVIARY_CHECK(!__builtin_mul_overflow(numel, at::elementSize(d->dtype), &nbytes) && nbytes == e.end - e.begin,
                     path, ": tensor '", name, "' data_offsets span ", e.end - e.begin, " bytes but shape and ",
                     dtype_name, " need ", nbytes);
        entries.push_back(std::move(e));
    }

    // Return tensors in data order (ties keep header order); overlapping byte ranges mean a corrupt file.
    std::stable_sort(entries.begin(), entries.end(),
                     [](const HeaderEntry& a, const HeaderEntry& b) { return a.begin < b.begin; });
    for (size_t k = 1; k < entries.size(); ++k) {
        AVIARY_CHECK(entries[k].begin >= entries[k - 1].end, path, ": tensors '", entries[k - 1].name, "' and '",
                     entries[k].name, "' overlap in the data section (corrupt file)");
    }

    TensorList out;
    out.reserve(entries.size());
    for (const HeaderEntry& e : entries) {
        const at::ScalarType load_type = e.dtype == at::kBool ? at::kByte : e.dtype;
        at::Tensor t = detail::empty_for_load(e.shape, load_type);
        if (e.end > e.begin) {
            std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
            file.release(data + e.begin, e.end - e.begin);
        }
        out.push_back(NamedTensor{e.name, e.dtype == at::kBool ? t.ne(0) : t});
    }
    return out;
}

void write_safetensors(const std::string& path, const TensorList& tensors, const Metadata& metadata) {
    // Header first, in list order; data offsets follow the same order with no gaps.
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header[kMetadataKey] = m;
    }
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const NamedTensor& nt : tensors) {
        AVIARY_CHECK(nt.tensor.defined(), path, ": tensor '", nt.name, "' is undefined; nothing to write");
        AVIARY_CHECK(!nt.name.empty() && nt.name != kMetadataKey, path, ": '", nt.name,
                     "' cannot be a safetensors tensor name");
        AVIARY_CHECK(names.insert(nt.name).second, path, ": tensor '", nt.name, "' appears twice in the list");
        const char* dtype = dtype_to_name(nt.tensor.scalar_type());
        AVIARY_CHECK(dtype != nullptr, path, ": tensor '", nt.name, "' has dtype ", nt.tensor.scalar_type(),
                     "; expected float32/float16/bfloat16/float64/int64/int32/int8/uint8/bool");
        const uint64_t nbytes = static_cast<uint64_t>(nt.tensor.numel()) * nt.tensor.element_size();
        nlohmann::ordered_json info = nlohmann::ordered_json::object();
        info["dtype"] = dtype;
        info["shape"] = nt.tensor.sizes().vec();
        info["data_offsets"] = {offset, offset + nbytes};
        header[nt.name] = info;
        offset += nbytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL(path, ": tensor names and metadata must be valid UTF-8 (", e.what(), ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
    const uint64_t header_len = text.size();

    AtomicFile file(path);
    file.write(&header_len, 8);
    file.write(text.data(), text.size());
    for (const NamedTensor& nt : tensors) {
        at::Tensor t = nt.tensor.to(at::kCPU).contiguous();  // one tensor at a time keeps peak memory low
        if (t.numel() > 0) file.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    }
    file.commit();
}

}  // namespace aviary
