// Tests for core/src/{zip_reader,pth_reader,pth_writer,safetensors,checkpoint}.cpp. The .pth fixtures come from
// torch.save and the .safetensors fixtures from the official safetensors package (tools/make_checkpoint_fixtures.py
// names the versions), so each reader is checked against an independent writer and against manifest.txt; the .pth
// writer is checked by a separate zip parser here and by torch.load (written_by_aviary.pth, --verify-pth).
// Bad input (truncation, corruption, hostile pickles, broken headers) must throw aviary::Error, never crash.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "aviary/core/atomic_file.h"
#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
// Internal writer options (forced zip64) and its CRC-32, which the PthWriter tests reach into.
#include "../../core/src/pth_writer.h"

namespace {

namespace fs = std::filesystem;
using aviary::Metadata;
using aviary::NamedTensor;
using aviary::TensorList;

std::string fixture(const std::string& name) {
    return std::string(AVIARY_FIXTURES_DIR) + "/checkpoint/" + name;
}

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh temporary directory, removed with its contents at scope exit.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "aviary-ckpt-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
        EXPECT_FALSE(path_.empty());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Runs fn, which must throw aviary::Error with a one-line message containing every `needles` entry.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& needles) {
    try {
        fn();
        ADD_FAILURE() << "expected aviary::Error containing '" << (needles.empty() ? "" : needles[0]) << "'";
    } catch (const aviary::Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.find('\n'), std::string::npos) << "error message is not one line: " << what;
        for (const std::string& n : needles) {
            EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
        }
    }
}

// Compares two state dicts by name (the official safetensors writer reorders tensors); exact equality.
void expect_same_tensors(const TensorList& got, const TensorList& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (const NamedTensor& w : want) {
        const at::Tensor* g = aviary::find_tensor(got, w.name);
        ASSERT_NE(g, nullptr) << what << ": missing " << w.name;
        EXPECT_EQ(g->scalar_type(), w.tensor.scalar_type()) << what << ": " << w.name;
        EXPECT_EQ(g->sizes(), w.tensor.sizes()) << what << ": " << w.name;
        EXPECT_TRUE(g->is_contiguous()) << what << ": " << w.name;
        EXPECT_TRUE(at::equal(*g, w.tensor)) << what << ": " << w.name << " differs";
    }
}

std::vector<std::string> names_of(const TensorList& t) {
    std::vector<std::string> out;
    for (const NamedTensor& nt : t) out.push_back(nt.name);
    return out;
}

std::string dtype_word(at::ScalarType t) {
    switch (t) {
        case at::kFloat:
            return "float32";
        case at::kHalf:
            return "float16";
        case at::kBFloat16:
            return "bfloat16";
        case at::kDouble:
            return "float64";
        case at::kLong:
            return "int64";
        case at::kInt:
            return "int32";
        case at::kChar:
            return "int8";
        case at::kByte:
            return "uint8";
        case at::kBool:
            return "bool";
        default:
            return "?";
    }
}

// Checks tensors against manifest.txt lines "file name dtype shape sum" (written by torch in float64).
void expect_matches_manifest(const TensorList& got, const std::string& file_key) {
    std::ifstream in(fixture("manifest.txt"));
    ASSERT_TRUE(in.good());
    std::string line;
    size_t checked = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string file, name, dtype, shape;
        double sum = 0;
        ls >> file >> name >> dtype >> shape >> sum;
        if (file != file_key) continue;
        const at::Tensor* t = aviary::find_tensor(got, name);
        ASSERT_NE(t, nullptr) << file_key << ": missing " << name;
        EXPECT_EQ(dtype_word(t->scalar_type()), dtype) << name;
        std::string shape_got;
        for (int64_t d : t->sizes()) shape_got += (shape_got.empty() ? "" : ",") + std::to_string(d);
        EXPECT_EQ(shape_got.empty() ? "-" : shape_got, shape) << name;
        const double s = t->to(at::kDouble).sum().item<double>();
        EXPECT_NEAR(s, sum, 1e-9 * std::max(1.0, std::fabs(sum))) << name;
        ++checked;
    }
    EXPECT_EQ(checked, got.size()) << "manifest does not list every tensor of " << file_key;
}

// ---- .pth ---------------------------------------------------------------------------------------------------

TEST(PthReader, AllDtypesMatchOfficialSafetensorsAndManifest) {
    TensorList pth = aviary::read_pth(fixture("all_dtypes.pth"));
    TensorList st = aviary::read_safetensors(fixture("all_dtypes.safetensors"));
    expect_same_tensors(pth, st, "all_dtypes.pth vs safetensors");
    expect_matches_manifest(pth, "all_dtypes");
    expect_matches_manifest(st, "all_dtypes");
    // File order is kept.
    const std::vector<std::string> order = {
        "f32",        "f16",      "bf16",       "f64",   "i64",   "i32",       "i8",
        "u8",         "bool",     "scalar",     "empty", "param", "view.base", "view.transposed",
        "view.slice", "view.row", "view.column"};
    EXPECT_EQ(names_of(pth), order);
    for (const NamedTensor& nt : pth) EXPECT_EQ(nt.tensor.device().type(), at::kCPU);
}

TEST(PthReader, ViewsWithOffsetsAndSharedStorage) {
    TensorList pth = aviary::read_pth(fixture("all_dtypes.pth"));
    const at::Tensor base = *aviary::find_tensor(pth, "view.base");
    ASSERT_EQ(base.sizes(), at::IntArrayRef({4, 6}));
    const at::Tensor tr = *aviary::find_tensor(pth, "view.transposed");
    const at::Tensor sl = *aviary::find_tensor(pth, "view.slice");
    const at::Tensor row = *aviary::find_tensor(pth, "view.row");
    const at::Tensor col = *aviary::find_tensor(pth, "view.column");
    EXPECT_TRUE(at::equal(tr, base.t()));
    EXPECT_TRUE(at::equal(sl, base.slice(0, 1, 3).slice(1, 2, 5)));
    EXPECT_TRUE(at::equal(row, base[2]));
    EXPECT_TRUE(at::equal(col, base.select(1, 3)));
    for (const at::Tensor* t : {&tr, &sl, &row, &col}) {
        EXPECT_TRUE(t->is_contiguous());
        EXPECT_EQ(t->storage_offset(), 0);
        EXPECT_NE(t->data_ptr(), base.data_ptr()) << "views come back as their own compact tensors";
    }
    // A parameter (torch._utils._rebuild_parameter) loads as a plain tensor.
    EXPECT_EQ(aviary::find_tensor(pth, "param")->sizes(), at::IntArrayRef({2, 2}));
    EXPECT_EQ(aviary::find_tensor(pth, "scalar")->dim(), 0);
    EXPECT_FLOAT_EQ(aviary::find_tensor(pth, "scalar")->item<float>(), 3.25f);
    EXPECT_EQ(aviary::find_tensor(pth, "empty")->sizes(), at::IntArrayRef({0, 4}));
}

TEST(PthReader, ModuleStateDictWithMetadata) {
    // state_dict() of a real nn.Module: the OrderedDict carries _metadata (BUILD), which is ignored.
    TensorList pth = aviary::read_pth(fixture("module.pth"));
    const std::vector<std::string> order = {"scale",           "emb.weight",    "blocks.0.weight", "blocks.0.bias",
                                            "blocks.1.weight", "blocks.1.bias", "head.weight"};
    EXPECT_EQ(names_of(pth), order);
    expect_same_tensors(pth, aviary::read_safetensors(fixture("module.safetensors")), "module.pth vs safetensors");
    expect_matches_manifest(pth, "module");
}

TEST(PthReader, Protocol4AndStateDictWrapper) {
    // pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE) and {"state_dict": {...}} unwrapped to the inner dict.
    TensorList p4 = aviary::read_pth(fixture("module_proto4.pth"));
    TensorList p2 = aviary::read_pth(fixture("module.pth"));
    EXPECT_EQ(names_of(p4), names_of(p2));
    expect_same_tensors(p4, p2, "module_proto4.pth vs module.pth");
}

TEST(PthReader, Zip64ExtraFields) {
    TensorList z = aviary::read_pth(fixture("module_zip64.pth"));
    TensorList p = aviary::read_pth(fixture("module.pth"));
    EXPECT_EQ(names_of(z), names_of(p));
    expect_same_tensors(z, p, "module_zip64.pth vs module.pth");
}

TEST(PthReader, RefusesForbiddenGlobals) {
    const std::string os_system = fixture("bad_global_os_system.pth");
    expect_error([&] { aviary::read_pth(os_system); }, {os_system, "os.system", "refusing"});
    const std::string from_bytes = fixture("bad_global_load_from_bytes.pth");
    expect_error([&] { aviary::read_pth(from_bytes); }, {from_bytes, "torch.storage._load_from_bytes"});
}

TEST(PthReader, RefusesCompressedBigEndianAndNonStateDicts) {
    const std::string compressed = fixture("bad_compressed.pth");
    expect_error([&] { aviary::read_pth(compressed); }, {compressed, "compressed", "data.pkl"});
    const std::string big = fixture("bad_big_endian.pth");
    expect_error([&] { aviary::read_pth(big); }, {big, "big"});
    const std::string list = fixture("bad_list_of_tensors.pth");
    expect_error([&] { aviary::read_pth(list); }, {list, "'a'", "list"});
    const std::string not_dict = fixture("bad_not_a_dict.pth");
    expect_error([&] { aviary::read_pth(not_dict); }, {not_dict, "top-level"});
}

// ---- safetensors ------------------------------------------------------------------------------------------------

TEST(SafetensorsReader, MetadataMap) {
    Metadata md;
    md["stale"] = "x";
    TensorList st = aviary::read_safetensors(fixture("all_dtypes.safetensors"), &md);
    EXPECT_EQ(md, (Metadata{{"format", "pt"}, {"source", "make_checkpoint_fixtures.py"}}));
    EXPECT_EQ(st.size(), 17u);
    aviary::read_safetensors(fixture("module.safetensors"), &md);
    EXPECT_TRUE(md.empty());
}

// Builds a safetensors file from a header string and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data, uint64_t header_len = UINT64_MAX) {
    const uint64_t n = header_len == UINT64_MAX ? header.size() : header_len;
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

TEST(SafetensorsReader, RefusesBrokenHeaders) {
    TempDir dir;
    const std::string p = dir.file("bad.safetensors");
    const std::string data(16, '\x01');
    struct Case {
        std::string header;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,100]}})", "outside the data section"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}})", "outside the data section"},
        {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "need 12"},
        {R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", "F128"},
        {R"({"a":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}})", "I16"},
        {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "non-negative"},
        {R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", "non-negative"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", "data_offsets"},
        {R"({"a":{"shape":[2],"data_offsets":[0,8]}})", "dtype"},
        {R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", "too large"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
         R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
         "twice"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
         "overlap"},
        {R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "__metadata__"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", "not valid JSON"},
        {R"(["a"])", "JSON object"},
        {R"({"a":7})", "object"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.header);
        write_bytes(p, safetensors_bytes(c.header, data));
        expect_error([&] { aviary::read_safetensors(p); }, {p, c.needle});
    }
    // Header length: over the 100 MB limit, huge, and past the end of the file.
    write_bytes(p, safetensors_bytes("{}", data, 200ull * 1000 * 1000));
    expect_error([&] { aviary::read_safetensors(p); }, {p, "100 MB"});
    write_bytes(p, safetensors_bytes("{}", data, UINT64_MAX - 1));
    expect_error([&] { aviary::read_safetensors(p); }, {p, "100 MB"});
    write_bytes(p, safetensors_bytes("{}", "", 4096));
    expect_error([&] { aviary::read_safetensors(p); }, {p, "runs past the file"});
    write_bytes(p, "1234");
    expect_error([&] { aviary::read_safetensors(p); }, {p, "too short"});
    // A valid minimal file still loads (an empty header and a zero-size tensor).
    write_bytes(p, safetensors_bytes(R"({"z":{"dtype":"BOOL","shape":[0],"data_offsets":[0,0]}})", ""));
    EXPECT_EQ(aviary::read_safetensors(p).at(0).tensor.numel(), 0);
}

// A list covering every dtype, with a non-contiguous and a 0-d tensor.
TensorList sample_tensors() {
    at::manual_seed(7);
    TensorList t;
    t.push_back({"z.f32", at::randn({3, 4})});
    t.push_back({"a.f16", at::randn({5}).to(at::kHalf)});
    t.push_back({"m.bf16", at::randn({2, 2, 3}).to(at::kBFloat16)});
    t.push_back({"f64", at::randn({3}, at::kDouble)});
    t.push_back({"i64", at::randint(-(int64_t(1) << 40), int64_t(1) << 40, {4}, at::kLong)});
    t.push_back({"i32", at::randint(-1000, 1000, {2, 3}, at::kInt)});
    t.push_back({"i8", at::randint(-128, 128, {6}, at::kChar)});
    t.push_back({"u8", at::randint(0, 256, {6}, at::kByte)});
    t.push_back({"bool", at::rand({7}) > 0.5});
    t.push_back({"transposed", at::randn({3, 5}).t()});
    t.push_back({"scalar", at::scalar_tensor(-1.5)});
    t.push_back({"empty", at::empty({0, 3})});
    return t;
}

TEST(SafetensorsWriter, RoundTripKeepsOrderValuesAndMetadata) {
    TempDir dir;
    const std::string p = dir.file("out.safetensors");
    const TensorList in = sample_tensors();
    const Metadata md = {{"format", "pt"}, {"aviary.note", "round trip \"quoted\" \xc3\xa9"}};
    aviary::write_safetensors(p, in, md);
    Metadata md_back;
    TensorList back = aviary::read_safetensors(p, &md_back);
    EXPECT_EQ(names_of(back), names_of(in));
    expect_same_tensors(back, in, "write/read round trip");
    EXPECT_EQ(md_back, md);
    // read_checkpoint picks the safetensors reader by content.
    expect_same_tensors(aviary::read_checkpoint(p), in, "read_checkpoint");
    // Only the target is left in the directory (the temp file was renamed).
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);
}

TEST(SafetensorsWriter, HeaderLayoutBytes) {
    TempDir dir;
    const std::string p = dir.file("layout.safetensors");
    const TensorList in = sample_tensors();
    aviary::write_safetensors(p, in, {{"k", "v"}});
    const std::string bytes = read_bytes(p);
    ASSERT_GE(bytes.size(), 8u);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u) << "header must be padded to a multiple of 8";
    ASSERT_LE(8 + n, bytes.size());
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.rfind(R"({"__metadata__":{"k":"v"},)", 0), 0u) << header;
    const size_t close = header.find_last_not_of(' ');
    EXPECT_EQ(header[close], '}');
    EXPECT_LT(n - (close + 1), 8u) << "only the padding follows the JSON";
    // Names appear in list order and the data section is the tensors' bytes back to back.
    size_t pos = 0;
    std::string data;
    uint64_t offset = 0;
    for (const NamedTensor& nt : in) {
        const size_t where = header.find("\"" + nt.name + "\":{", pos);
        ASSERT_NE(where, std::string::npos) << nt.name;
        pos = where;
        const at::Tensor c = nt.tensor.contiguous();
        const uint64_t nbytes = c.numel() * c.element_size();
        const std::string offsets =
            "\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]";
        EXPECT_NE(header.find(offsets, where), std::string::npos) << nt.name << " " << offsets;
        data.append(static_cast<const char*>(c.data_ptr()), nbytes);
        offset += nbytes;
    }
    EXPECT_EQ(bytes.substr(8 + n), data);
}

TEST(SafetensorsWriter, FailuresLeaveNoFiles) {
    TempDir dir;
    const std::string p = dir.file("keep.safetensors");
    aviary::write_safetensors(p, {{"x", at::ones({2})}});
    const std::string before = read_bytes(p);
    TensorList dup = {{"x", at::ones({2})}, {"x", at::zeros({2})}};
    expect_error([&] { aviary::write_safetensors(p, dup); }, {p, "twice"});
    expect_error([&] { aviary::write_safetensors(p, {{"s", at::ones({2}, at::kShort)}}); }, {p, "'s'", "dtype"});
    expect_error([&] { aviary::write_safetensors(p, {{"u", at::Tensor()}}); }, {p, "undefined"});
    expect_error([&] { aviary::write_safetensors(p, {{"__metadata__", at::ones({1})}}); }, {p, "__metadata__"});
    expect_error([&] { aviary::write_safetensors(p, {{"bad\xff", at::ones({1})}}); }, {p, "UTF-8"});
    EXPECT_EQ(read_bytes(p), before);
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);
    const std::string missing_dir = dir.file("no/such/dir/x.safetensors");
    expect_error([&] { aviary::write_safetensors(missing_dir, {{"x", at::ones({1})}}); }, {missing_dir});
    // Overwriting replaces the content.
    aviary::write_safetensors(p, {{"y", at::full({3}, 2.0)}});
    TensorList back = aviary::read_safetensors(p);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].name, "y");
}

TEST(SafetensorsWriter, PthToSafetensorsForOfficialReader) {
    // Converts the torch.save fixture; with AVIARY_CKPT_WRITE_COPY set, the file is also written there so that
    // `tools/make_checkpoint_fixtures.py --verify FILE` can check it with the official safetensors reader.
    TensorList pth = aviary::read_pth(fixture("all_dtypes.pth"));
    TempDir dir;
    const std::string p = dir.file("from_pth.safetensors");
    aviary::write_safetensors(p, pth, {{"source", "aviary"}});
    expect_same_tensors(aviary::read_safetensors(p), pth, "pth -> safetensors");
    if (const char* copy = std::getenv("AVIARY_CKPT_WRITE_COPY")) aviary::write_safetensors(copy, pth);
}

// ---- .pth writer ---------------------------------------------------------------------------------------------

// CRC-32 as ZIP defines it, bit by bit (independent of the writer's table-driven version).
uint32_t crc32_bitwise(const char* data, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        c ^= static_cast<unsigned char>(data[i]);
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

uint64_t get_le(const std::string& b, uint64_t pos, int bytes) {
    EXPECT_LE(pos + bytes, b.size());
    if (pos + bytes > b.size()) return 0;
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(b[pos + k]);
    return v;
}

// A zip entry as the test's own parser sees it (central directory joined with the local header).
struct TestZipEntry {
    std::string name;
    uint16_t flags_central = 0, flags_local = 0, method_central = 0, method_local = 0;
    uint32_t crc_central = 0, crc_local = 0;
    uint64_t size_compressed = 0, size_uncompressed = 0, offset = 0, data_offset = 0;
    std::string data;
};

struct TestZip {
    std::vector<TestZipEntry> entries;
    bool zip64_end = false;  // a zip64 end record + locator precede the end record
};

// Minimal, separately written zip parser (APPNOTE 6.3): end record without a comment, optional zip64 end record,
// central directory with zip64 extra fields, local headers. Reports problems as test failures.
TestZip parse_zip(const std::string& b) {
    TestZip z;
    EXPECT_GE(b.size(), 22u);
    if (b.size() < 22) return z;
    const uint64_t eocd = b.size() - 22;  // Aviary writes no archive comment
    EXPECT_EQ(get_le(b, eocd, 4), 0x06054b50u);
    uint64_t count = get_le(b, eocd + 10, 2), cd_size = get_le(b, eocd + 12, 4), cd_offset = get_le(b, eocd + 16, 4);
    if (eocd >= 20 && get_le(b, eocd - 20, 4) == 0x07064b50u) {
        z.zip64_end = true;
        const uint64_t z64 = get_le(b, eocd - 20 + 8, 8);
        EXPECT_EQ(get_le(b, z64, 4), 0x06064b50u);
        EXPECT_EQ(get_le(b, z64 + 4, 8), 44u);
        EXPECT_EQ(get_le(b, z64 + 24, 8), get_le(b, z64 + 32, 8));
        count = get_le(b, z64 + 32, 8);
        cd_size = get_le(b, z64 + 40, 8);
        cd_offset = get_le(b, z64 + 48, 8);
        EXPECT_EQ(z64, cd_offset + cd_size);
    } else {
        EXPECT_EQ(eocd, cd_offset + cd_size);
    }
    uint64_t pos = cd_offset;
    for (uint64_t i = 0; i < count && pos + 46 <= b.size(); ++i) {
        EXPECT_EQ(get_le(b, pos, 4), 0x02014b50u) << "central header " << i;
        TestZipEntry e;
        e.flags_central = static_cast<uint16_t>(get_le(b, pos + 8, 2));
        e.method_central = static_cast<uint16_t>(get_le(b, pos + 10, 2));
        e.crc_central = static_cast<uint32_t>(get_le(b, pos + 16, 4));
        e.size_compressed = get_le(b, pos + 20, 4);
        e.size_uncompressed = get_le(b, pos + 24, 4);
        const uint64_t n_name = get_le(b, pos + 28, 2), n_extra = get_le(b, pos + 30, 2);
        const uint64_t n_comment = get_le(b, pos + 32, 2);
        e.offset = get_le(b, pos + 42, 4);
        e.name = b.substr(pos + 46, n_name);
        for (uint64_t x = pos + 46 + n_name; x + 4 <= pos + 46 + n_name + n_extra;) {
            const uint64_t id = get_le(b, x, 2), len = get_le(b, x + 2, 2);
            if (id == 1) {
                uint64_t f = x + 4;
                if (e.size_uncompressed == 0xFFFFFFFFu) e.size_uncompressed = get_le(b, f, 8), f += 8;
                if (e.size_compressed == 0xFFFFFFFFu) e.size_compressed = get_le(b, f, 8), f += 8;
                if (e.offset == 0xFFFFFFFFu) e.offset = get_le(b, f, 8), f += 8;
                EXPECT_EQ(f, x + 4 + len) << e.name << ": zip64 extra field has unused bytes";
            }
            x += 4 + len;
        }
        EXPECT_EQ(get_le(b, e.offset, 4), 0x04034b50u) << e.name;
        e.flags_local = static_cast<uint16_t>(get_le(b, e.offset + 6, 2));
        e.method_local = static_cast<uint16_t>(get_le(b, e.offset + 8, 2));
        e.crc_local = static_cast<uint32_t>(get_le(b, e.offset + 14, 4));
        const uint64_t l_name = get_le(b, e.offset + 26, 2), l_extra = get_le(b, e.offset + 28, 2);
        EXPECT_EQ(b.substr(e.offset + 30, l_name), e.name) << "local and central names differ";
        e.data_offset = e.offset + 30 + l_name + l_extra;
        if (e.data_offset + e.size_compressed <= b.size()) e.data = b.substr(e.data_offset, e.size_compressed);
        EXPECT_LE(e.data_offset + e.size_compressed, b.size()) << e.name;
        z.entries.push_back(e);
        pos += 46 + n_name + n_extra + n_comment;
    }
    EXPECT_EQ(z.entries.size(), count);
    EXPECT_EQ(pos, cd_offset + cd_size);
    return z;
}

// The file's raw tensor bytes (row-major).
std::string tensor_bytes(const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

// sample_tensors() plus more views: a slice with an offset, an expanded (stride 0) and a 4-d permuted tensor.
TensorList pth_writer_inputs() {
    TensorList t = sample_tensors();
    const at::Tensor base = at::randn({4, 6});
    t.push_back({"slice", base.slice(0, 1, 3).slice(1, 2, 5)});
    t.push_back({"expanded", at::randn({3}).expand({2, 3})});
    t.push_back({"permuted.4d", at::randn({2, 3, 1, 4}).to(at::kBFloat16).permute({3, 0, 2, 1})});
    t.push_back({"big.dims.empty", at::empty({int64_t(1) << 33, 0})});
    return t;
}

void check_structure(const std::string& path, const TensorList& in, bool zip64) {
    const std::string bytes = read_bytes(path);
    const TestZip z = parse_zip(bytes);
    EXPECT_EQ(z.zip64_end, zip64);
    const std::string stem = fs::path(path).stem().string();
    std::vector<std::string> want = {stem + "/data.pkl", stem + "/byteorder"};
    for (size_t i = 0; i < in.size(); ++i) want.push_back(stem + "/data/" + std::to_string(i));
    want.push_back(stem + "/version");
    std::vector<std::string> got;
    for (const TestZipEntry& e : z.entries) {
        SCOPED_TRACE(e.name);
        got.push_back(e.name);
        EXPECT_EQ(e.method_central, 0) << "STORED";
        EXPECT_EQ(e.method_local, 0) << "STORED";
        EXPECT_EQ(e.flags_central & 0x9, 0) << "no encryption, no data descriptor";
        EXPECT_EQ(e.flags_local, e.flags_central);
        EXPECT_EQ(e.size_compressed, e.size_uncompressed);
        EXPECT_EQ(e.data.size(), e.size_compressed);
        const uint32_t crc = crc32_bitwise(e.data.data(), e.data.size());
        EXPECT_EQ(e.crc_central, crc);
        EXPECT_EQ(e.crc_local, crc);
        EXPECT_EQ(e.data_offset % 64, 0u) << "data must be 64-byte aligned for mmap loading";
    }
    EXPECT_EQ(got, want);
    if (z.entries.size() != want.size()) return;
    EXPECT_EQ(z.entries.back().data, "3\n");
    EXPECT_EQ(z.entries[1].data, "little");
    EXPECT_EQ(z.entries[0].data.substr(0, 2), std::string("\x80\x02", 2)) << "pickle protocol 2";
    EXPECT_NE(z.entries[0].data.find("ccollections\nOrderedDict\n"), std::string::npos);
    EXPECT_NE(z.entries[0].data.find("ctorch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
    for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(z.entries[2 + i].data, tensor_bytes(in[i].tensor)) << in[i].name;
}

TEST(PthWriter, RoundTripEveryDtypeViewAndShape) {
    TempDir dir;
    const std::string p = dir.file("model.pth");
    const TensorList in = pth_writer_inputs();
    aviary::write_pth(p, in);
    const TensorList back = aviary::read_pth(p);
    EXPECT_EQ(names_of(back), names_of(in));
    expect_same_tensors(back, in, "write_pth/read_pth round trip");
    EXPECT_EQ(aviary::find_tensor(back, "scalar")->dim(), 0);
    EXPECT_EQ(aviary::find_tensor(back, "big.dims.empty")->sizes(), at::IntArrayRef({int64_t(1) << 33, 0}));
    expect_same_tensors(aviary::read_checkpoint(p), in, "read_checkpoint");
    // Only the target is left in the directory (the temp file was renamed); an empty dict is a valid file too.
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);
    aviary::write_pth(dir.file("empty.pth"), {});
    EXPECT_TRUE(aviary::read_pth(dir.file("empty.pth")).empty());
}

TEST(PthWriter, ZipLayoutCrcAndAlignment) {
    TempDir dir;
    const TensorList in = pth_writer_inputs();
    const std::string p = dir.file("layout.v1.pth");
    aviary::write_pth(p, in);
    check_structure(p, in, /*zip64=*/false);
    // Equal input gives equal bytes; a file name that is no plain identifier gets the "archive" folder.
    const std::string q = dir.file("other dir name.pth");
    aviary::write_pth(q, in);
    EXPECT_EQ(parse_zip(read_bytes(q)).entries.at(0).name, "archive/data.pkl");
    aviary::write_pth(dir.file("again.pth"), in);
    aviary::write_pth(dir.file("layout.v1.pth"), in);
    EXPECT_EQ(read_bytes(p), read_bytes(dir.file("layout.v1.pth")));
}

TEST(PthWriter, Zip64FormsReadBack) {
    // A >4 GB archive is too big for a unit test; forcing zip64 on a small one exercises the same records.
    TempDir dir;
    const TensorList in = pth_writer_inputs();
    const std::string p = dir.file("forced_zip64.pth");
    aviary::detail::write_pth_with(p, in, aviary::detail::PthWriteOptions{/*force_zip64=*/true});
    check_structure(p, in, /*zip64=*/true);
    expect_same_tensors(aviary::read_pth(p), in, "zip64 round trip");
}

TEST(PthWriter, Crc32MatchesBitwiseReference) {
    std::mt19937_64 rng(5);
    std::string buf(300, '\0');
    for (char& c : buf) c = static_cast<char>(rng());
    for (size_t start = 0; start < 9; ++start) {
        for (size_t n = 0; start + n <= buf.size(); n += 1 + n / 7) {
            const uint32_t want = crc32_bitwise(buf.data() + start, n);
            EXPECT_EQ(aviary::detail::crc32_update(0, buf.data() + start, n), want) << start << "+" << n;
            const size_t half = n / 2;  // a running CRC continues across pieces
            EXPECT_EQ(aviary::detail::crc32_update(aviary::detail::crc32_update(0, buf.data() + start, half),
                                                   buf.data() + start + half, n - half),
                      want);
        }
    }
    EXPECT_EQ(aviary::detail::crc32_update(0, "123456789", 9), 0xCBF43926u);  // the standard check value
}

// The tensors of tests/fixtures/checkpoint/written_by_aviary.pth. Exact values (multiples of powers of two, integer
// formulas), so tools/make_checkpoint_fixtures.py --verify-pth rebuilds the same tensors in Python.
TensorList written_fixture_tensors() {
    auto ar = [](int64_t n, at::ScalarType t) { return at::arange(n, at::TensorOptions().dtype(t)); };
    TensorList t;
    t.push_back({"emb.weight", (ar(12, at::kFloat) * 0.25 - 1.5).reshape({4, 3})});
    t.push_back({"blocks.0.att.time_decay", (ar(6, at::kFloat) * 0.5 - 1.0).reshape({2, 3}).to(at::kHalf)});
    t.push_back({"blocks.0.ln1.weight", (ar(5, at::kFloat) * 0.125 + 1.0).to(at::kBFloat16)});
    t.push_back({"bf16.4d", (ar(4, at::kFloat) - 2.0).reshape({1, 2, 1, 2}).to(at::kBFloat16)});
    t.push_back({"f64", ar(3, at::kDouble) * 0.75});
    t.push_back({"i64", (ar(4, at::kLong) * (int64_t(1) << 40) - 3).reshape({2, 2})});
    t.push_back({"i32", ar(3, at::kInt) * 1000 - 1500});
    t.push_back({"i8", (ar(4, at::kInt) * 50 - 100).to(at::kChar)});
    t.push_back({"u8", (ar(3, at::kInt) * 100 + 7).to(at::kByte)});
    t.push_back({"bool", (ar(6, at::kLong) % 2 == 0).reshape({2, 3})});
    t.push_back({"transposed", (ar(6, at::kFloat) * 0.5).reshape({2, 3}).t()});
    t.push_back({"wide", (ar(300, at::kInt) % 7).to(at::kHalf).reshape({1, 300})});
    t.push_back({"scalar", at::scalar_tensor(3.25)});
    t.push_back({"empty", at::empty({0, 4})});
    t.push_back({"empty.huge_dims", at::empty({70000, 0, int64_t(1) << 33})});
    t.push_back({"n\xc3\xa4me.\xe2\x9c\x93", at::full({2}, -0.5)});
    return t;
}

TEST(PthWriter, ReproducesTorchVerifiedFixtureByteForByte) {
    // written_by_aviary.pth was written by this writer and checked with torch.load by
    // `tools/make_checkpoint_fixtures.py --verify-pth`; any change in the bytes we write is caught here without
    // Python. With AVIARY_CKPT_WRITE_PTH_DIR set, the file (and a forced-zip64 variant) is also written there.
    const TensorList in = written_fixture_tensors();
    if (const char* out = std::getenv("AVIARY_CKPT_WRITE_PTH_DIR")) {
        aviary::write_pth(std::string(out) + "/written_by_aviary.pth", in);
        aviary::detail::write_pth_with(std::string(out) + "/written_by_aviary_zip64.pth", in,
                                       aviary::detail::PthWriteOptions{/*force_zip64=*/true});
    }
    const std::string fixture_path = fixture("written_by_aviary.pth");
    expect_same_tensors(aviary::read_pth(fixture_path), in, "written_by_aviary.pth");
    TempDir dir;
    const std::string p = dir.file("written_by_aviary.pth");  // same stem, so the same archive folder
    aviary::write_pth(p, in);
    const std::string got = read_bytes(p), want = read_bytes(fixture_path);
    EXPECT_EQ(got.size(), want.size());
    size_t first = 0;
    while (first < std::min(got.size(), want.size()) && got[first] == want[first]) ++first;
    EXPECT_TRUE(got == want) << "first differing byte at offset " << first;
    check_structure(fixture_path, in, /*zip64=*/false);
}

TEST(PthWriter, FailuresLeaveNoFiles) {
    TempDir dir;
    const std::string p = dir.file("keep.pth");
    aviary::write_pth(p, {{"x", at::ones({2})}});
    const std::string before = read_bytes(p);
    TensorList dup = {{"x", at::ones({2})}, {"x", at::zeros({2})}};
    expect_error([&] { aviary::write_pth(p, dup); }, {p, "twice"});
    expect_error([&] { aviary::write_pth(p, {{"s", at::ones({2}, at::kShort)}}); }, {p, "'s'", "dtype"});
    expect_error([&] { aviary::write_pth(p, {{"c", at::ones({2}, at::kComplexFloat)}}); }, {p, "'c'", "dtype"});
    expect_error([&] { aviary::write_pth(p, {{"u", at::Tensor()}}); }, {p, "undefined"});
    expect_error([&] { aviary::write_pth(p, {{"bad\xff", at::ones({1})}}); }, {p, "UTF-8"});
    expect_error([&] { aviary::write_pth(p, {{"sp", at::ones({2, 2}).to_sparse()}}); }, {p, "'sp'", "layout"});
    EXPECT_EQ(read_bytes(p), before);
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);
    const std::string missing_dir = dir.file("no/such/dir/x.pth");
    expect_error([&] { aviary::write_pth(missing_dir, {{"x", at::ones({1})}}); }, {missing_dir});
    // Overwriting replaces the content.
    aviary::write_pth(p, {{"y", at::full({3}, 2.0)}});
    TensorList back = aviary::read_pth(p);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].name, "y");
}

// ---- read_checkpoint, convert_dtype, find_tensor -----------------------------------------------------------------

TEST(CheckpointRead, DispatchesByContent) {
    Metadata md = {{"stale", "1"}};
    TensorList a = aviary::read_checkpoint(fixture("module.pth"), &md);
    EXPECT_TRUE(md.empty());
    TensorList b = aviary::read_checkpoint(fixture("module.safetensors"), &md);
    expect_same_tensors(a, b, "read_checkpoint pth vs safetensors");
    // The extension does not matter: a .pth copied to a .safetensors name still reads as a zip.
    TempDir dir;
    write_bytes(dir.file("renamed.safetensors"), read_bytes(fixture("module.pth")));
    expect_same_tensors(aviary::read_checkpoint(dir.file("renamed.safetensors")), a, "renamed");
}

TEST(CheckpointRead, MissingDirectoryEmptyAndUnknown) {
    TempDir dir;
    const std::string missing = dir.file("missing.pth");
    expect_error([&] { aviary::read_checkpoint(missing); }, {missing, "not found"});
    expect_error([&] { aviary::read_checkpoint(dir.path()); }, {dir.path(), "directory"});
    expect_error([&] { aviary::read_pth(dir.path()); }, {dir.path(), "directory"});
    expect_error([&] { aviary::read_safetensors(missing); }, {missing});
    const std::string empty = dir.file("empty.pth");
    write_bytes(empty, "");
    expect_error([&] { aviary::read_checkpoint(empty); }, {empty, "empty"});
    expect_error([&] { aviary::read_pth(empty); }, {empty});
    expect_error([&] { aviary::read_safetensors(empty); }, {empty});
    const std::string text = dir.file("text.bin");
    write_bytes(text, "hello world, not a checkpoint\n");
    expect_error([&] { aviary::read_checkpoint(text); }, {text, "unknown checkpoint format"});
    const std::string legacy = dir.file("legacy.pth");
    write_bytes(legacy, std::string("\x80\x02\x8a\x0a", 4) + "legacy");
    expect_error([&] { aviary::read_checkpoint(legacy); }, {legacy, "legacy"});
}

TEST(CheckpointRead, RandomBytesAreRefused) {
    TempDir dir;
    const std::string p = dir.file("random.bin");
    std::mt19937_64 rng(42);
    for (int trial = 0; trial < 200; ++trial) {
        std::string bytes(1 + rng() % 3000, '\0');
        for (char& c : bytes) c = static_cast<char>(rng());
        if (trial % 3 == 1) bytes.replace(0, std::min<size_t>(4, bytes.size()), "PK\x03\x04", 4);
        if (trial % 3 == 2 && bytes.size() > 9) bytes[8] = '{';
        write_bytes(p, bytes);
        EXPECT_THROW(aviary::read_checkpoint(p), aviary::Error) << "trial " << trial;
    }
}

TEST(CheckpointRead, TruncatedAtEveryLength) {
    TempDir dir;
    for (const std::string name : {"all_dtypes.pth", "all_dtypes.safetensors", "module_zip64.pth"}) {
        const std::string full = read_bytes(fixture(name));
        ASSERT_GT(full.size(), 100u);
        const std::string p = dir.file("cut-" + name);
        write_bytes(p, full);
        for (size_t len = full.size(); len-- > 0;) {
            ASSERT_EQ(::truncate(p.c_str(), static_cast<off_t>(len)), 0);  // shrink in place: cheap per length
            try {
                aviary::read_checkpoint(p);
                ADD_FAILURE() << name << " truncated to " << len << " bytes was accepted";
            } catch (const aviary::Error& e) {
                EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
            }
        }
    }
}

// read_checkpoint_bytes is read_checkpoint on a view of memory (the same sniffer and readers; the fuzzers' entry): for
// every fixture, the refused ones included, and for truncations and flipped header bytes, the same tensors in the
// same order and the same metadata, or the same error naming the same file.
TEST(CheckpointRead, BytesReadLikeTheFile) {
    TempDir dir;
    size_t compared = 0, refused = 0;
    auto compare = [&](const std::string& path) {
        SCOPED_TRACE(path);
        const std::string bytes = read_bytes(path);
        // A heap copy of exactly the file's size, as the fuzzer passes: a read past the end is ASan's to see.
        const std::vector<uint8_t> heap(bytes.begin(), bytes.end());
        Metadata md_file = {{"stale", "1"}}, md_bytes = {{"stale", "1"}};
        TensorList from_file, from_bytes;
        std::string error_file, error_bytes;
        try {
            from_file = aviary::read_checkpoint(path, &md_file);
        } catch (const aviary::Error& e) {
            error_file = e.what();
        }
        try {
            from_bytes = aviary::read_checkpoint_bytes(heap.data(), heap.size(), path, &md_bytes);
        } catch (const aviary::Error& e) {
            error_bytes = e.what();
        }
        EXPECT_EQ(error_bytes, error_file);
        EXPECT_EQ(md_bytes, md_file);
        EXPECT_EQ(names_of(from_bytes), names_of(from_file));
        expect_same_tensors(from_bytes, from_file, path);
        ++compared;
        return !error_file.empty();
    };
    std::vector<std::string> fixtures_refused;
    for (const auto& e : fs::directory_iterator(fixture(""))) {
        const std::string ext = e.path().extension().string();
        if (ext != ".pth" && ext != ".safetensors") continue;
        if (compare(e.path().string())) fixtures_refused.push_back(e.path().filename().string());
    }
    EXPECT_EQ(compared, 13u);
    std::sort(fixtures_refused.begin(), fixtures_refused.end());
    EXPECT_EQ(fixtures_refused,
              (std::vector<std::string>{"bad_big_endian.pth", "bad_compressed.pth", "bad_global_load_from_bytes.pth",
                                        "bad_global_os_system.pth", "bad_list_of_tensors.pth", "bad_not_a_dict.pth"}));
    for (const std::string name : {"all_dtypes.safetensors", "module.pth", "module_zip64.pth"}) {
        const std::string full = read_bytes(fixture(name));
        for (const size_t len :
             {size_t{0}, size_t{1}, size_t{4}, size_t{8}, size_t{9}, full.size() / 2, full.size() - 1}) {
            const std::string p = dir.file("cut-" + std::to_string(len) + "-" + name);
            write_bytes(p, full.substr(0, len));
            refused += compare(p);
        }
        for (size_t i = 0; i < 64; ++i) {
            std::string flipped = full;
            flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
            const std::string p = dir.file("flip-" + name);
            write_bytes(p, flipped);
            refused += compare(p);
        }
        // the end of the zip (central directory, end records) too
        for (size_t i = full.size() - 64; i < full.size(); ++i) {
            std::string flipped = full;
            flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
            const std::string p = dir.file("flip-end-" + name);
            write_bytes(p, flipped);
            refused += compare(p);
        }
    }
    EXPECT_GE(refused, 3u * 7u);  // every truncation at least
}

TEST(CheckpointRead, CorruptedBytesThrowOrLoadNeverCrash) {
    // Every byte of a real file, flipped: the reader either loads something or throws aviary::Error
    // (anything else, e.g. a c10::Error or a crash, fails).
    TempDir dir;
    for (const std::string name : {"module.pth", "module_proto4.pth", "module.safetensors"}) {
        const std::string full = read_bytes(fixture(name));
        const std::string p = dir.file("flip-" + name);
        write_bytes(p, full);
        const int fd = ::open(p.c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        size_t refused = 0;
        for (size_t i = 0; i < full.size(); ++i) {
            for (const unsigned char mask : {0xFFu, 0x01u, 0x80u}) {
                // Patch one byte in place, read, then restore it.
                const char flipped = static_cast<char>(static_cast<unsigned char>(full[i]) ^ mask);
                ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(i)), 1);
                try {
                    aviary::read_checkpoint(p);
                } catch (const aviary::Error&) {
                    ++refused;
                } catch (const std::exception& e) {
                    ADD_FAILURE() << name << " byte " << i << " ^ " << int(mask) << ": non-aviary exception "
                                  << e.what();
                }
                ASSERT_EQ(::pwrite(fd, &full[i], 1, static_cast<off_t>(i)), 1);
            }
        }
        ::close(fd);
        EXPECT_GT(refused, 0u) << name;
    }
}

TEST(CheckpointConvert, DtypesAndIntegersKept) {
    const TensorList in = sample_tensors();
    for (const auto& [word, type] : std::vector<std::pair<std::string, at::ScalarType>>{
             {"fp32", at::kFloat}, {"fp16", at::kHalf}, {"bf16", at::kBFloat16}}) {
        SCOPED_TRACE(word);
        TensorList out = aviary::convert_dtype(in, word);
        ASSERT_EQ(names_of(out), names_of(in));
        for (size_t k = 0; k < in.size(); ++k) {
            const at::Tensor& a = in[k].tensor;
            const at::Tensor& b = out[k].tensor;
            EXPECT_EQ(b.sizes(), a.sizes()) << in[k].name;
            if (a.is_floating_point()) {
                EXPECT_EQ(b.scalar_type(), type) << in[k].name;
                // Relative rounding error of the target type: 2^-8 (bf16), 2^-11 (fp16), exact-ish (fp32).
                const double tol = type == at::kBFloat16 ? 1.0 / 256 : type == at::kHalf ? 1.0 / 2048 : 1e-7;
                if (a.numel() > 0) {
                    const double err = (b.to(at::kDouble) - a.to(at::kDouble)).abs().max().item<double>();
                    const double ref = a.to(at::kDouble).abs().max().item<double>();
                    EXPECT_LE(err, tol * ref) << in[k].name << ": max |a-b| " << err << " vs max |a| " << ref;
                }
            } else {
                EXPECT_EQ(b.scalar_type(), a.scalar_type()) << in[k].name;
                EXPECT_TRUE(at::equal(a, b)) << in[k].name;
            }
        }
    }
    expect_error([&] { aviary::convert_dtype(in, "fp8"); }, {"'fp8'", "fp32, fp16 or bf16"});
    expect_error([&] { aviary::convert_dtype(in, "float32"); }, {"'float32'"});
}

TEST(CheckpointFind, FindsByName) {
    const TensorList in = sample_tensors();
    const at::Tensor* t = aviary::find_tensor(in, "i32");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->scalar_type(), at::kInt);
    EXPECT_EQ(aviary::find_tensor(in, "nope"), nullptr);
    EXPECT_EQ(aviary::find_tensor({}, "i32"), nullptr);
}

}  // namespace

// An atomic output gets the mode a plain file would (0666 less the umask), not mkstemp's private 0600.
TEST(AtomicFile, OutputModeFollowsTheUmask) {
    const mode_t mask = ::umask(0);  // umask(2) reads by setting: put it back at once
    ::umask(mask);
    const fs::path p = fs::temp_directory_path() / ("aviary_atomic_mode_" + std::to_string(::getpid()));
    aviary::write_file_atomic(p.string(), "x");
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666u & ~mask) << std::oct << (st.st_mode & 0777) << " under umask " << mask;
    fs::remove(p);
}

// remove_tree (atomic_file.h): nested directories and files go, a symbolic link is removed without touching its
// target, a missing path is fine, and a path that cannot be removed is an aviary::Error.
TEST(RemoveTree, NestedDirectoriesLinksAndMissingPaths) {
    const fs::path root = fs::temp_directory_path() / ("aviary_remove_tree_" + std::to_string(::getpid()));
    const fs::path outside = root.string() + "_outside";
    fs::remove_all(root);
    fs::remove_all(outside);
    fs::create_directories(root / "a" / "b" / "c");
    fs::create_directories(outside);
    std::ofstream(root / "top.txt") << "x";
    std::ofstream(root / "a" / "b" / "c" / "deep.bin") << "yy";
    std::ofstream(outside / "keep.txt") << "keep";
    fs::create_directory_symlink(outside, root / "a" / "link");
    aviary::remove_tree((root / "a").string());
    EXPECT_FALSE(fs::exists(root / "a"));
    EXPECT_TRUE(fs::exists(root / "top.txt"));
    EXPECT_TRUE(fs::exists(outside / "keep.txt")) << "the link's target must survive";
    aviary::remove_tree((root / "top.txt").string());  // a plain file
    EXPECT_FALSE(fs::exists(root / "top.txt"));
    EXPECT_NO_THROW(aviary::remove_tree((root / "missing").string()));
    aviary::remove_tree(root.string());
    EXPECT_FALSE(fs::exists(root));
    if (::geteuid() != 0) {  // root may delete anything
        fs::create_directories(outside / "locked" / "inner");
        fs::permissions(outside / "locked", fs::perms::owner_read | fs::perms::owner_exec);
        EXPECT_THROW(aviary::remove_tree((outside / "locked" / "inner").string()), aviary::Error);
        fs::permissions(outside / "locked", fs::perms::owner_all);
    }
    fs::remove_all(outside);
}
