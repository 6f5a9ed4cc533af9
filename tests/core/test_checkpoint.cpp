// Tests for core/src/{zip_reader,pth_reader,safetensors,checkpoint}.cpp. The .pth fixtures come from torch.save and
// the .safetensors fixtures from the official safetensors package (tools/make_checkpoint_fixtures.py names the
// versions), so each reader is checked against an independent writer and against manifest.txt (per-tensor sums).
// Bad input (truncation, corruption, hostile pickles, broken headers) must throw aviary::Error, never crash.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"

namespace {

namespace fs = std::filesystem;
using aviary::Metadata;
using aviary::NamedTensor;
using aviary::TensorList;

std::string fixture(const std::string& name) { return std::string(AVIARY_FIXTURES_DIR) + "/checkpoint/" + name; }

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
        case at::kFloat: return "float32";
        case at::kHalf: return "float16";
        case at::kBFloat16: return "bfloat16";
        case at::kDouble: return "float64";
        case at::kLong: return "int64";
        case at::kInt: return "int32";
        case at::kChar: return "int8";
        case at::kByte: return "uint8";
        case at::kBool: return "bool";
        default: return "?";
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
    const std::vector<std::string> order = {"f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool", "scalar",
                                            "empty", "param", "view.base", "view.transposed", "view.slice",
                                            "view.row", "view.column"};
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
    const std::vector<std::string> order = {"scale",          "emb.weight",     "blocks.0.weight", "blocks.0.bias",
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
