// read_pth: official torch.save checkpoints (zip: <prefix>/data.pkl + <prefix>/data/<key> storages), parsed with
// a RESTRICTED unpickler that knows only the opcodes and globals a state dict of tensors uses; anything else
// (os.system, torch.storage._load_from_bytes, lists of tensors, ...) is refused with the opcode/global named.
// Facts: pickle protocol 2-5 opcode table (CPython Lib/pickletools.py), torch/serialization.py persistent ids
// ('storage', type, key, location, numel) and torch/_utils.py _rebuild_tensor_v2 / _rebuild_parameter;
// checkpoint layout: shared/reference/rwkv_core_spec.md §1. Little-endian hosts and files only.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <unordered_map>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "checkpoint_readers.h"
#include "zip_reader.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Aviary's checkpoint readers assume a little-endian host");

namespace aviary {

namespace {

using detail::MappedFile;
using detail::ZipBytes;
using detail::ZipEntry;
using detail::ZipReader;

enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };
enum class GlobalId { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::None:
            return "None";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::Str:
            return "str";
        case Kind::Tuple:
            return "tuple";
        case Kind::List:
            return "list";
        case Kind::Dict:
            return "dict";
        case Kind::Global:
            return "global";
        case Kind::Storage:
            return "storage";
        case Kind::Tensor:
            return "tensor";
    }
    return "?";
}

// One Python object. All values live in the unpickler's arena and refer to each other by raw pointer, so
// hostile pickles cannot build reference cycles that leak or nest deep enough to overflow the stack on
// destruction.
struct Value {
    Kind kind = Kind::None;
    bool b = false;
    int64_t i = 0;
    double f = 0.0;
    std::string s;                                  // Str; Global: dotted name
    std::vector<Value*> items;                      // Tuple, List
    std::vector<std::pair<Value*, Value*>> pairs;   // Dict, in insertion order
    std::unordered_map<std::string, size_t> index;  // Dict: str key -> position in pairs
    GlobalId global = GlobalId::OrderedDict;        // Global
    at::ScalarType dtype = at::kFloat;              // Global StorageType, Storage
    at::Tensor tensor;                              // Storage: 1-D data; Tensor
    bool handed_out = false;                        // Storage: `tensor` already returned as a whole tensor
};

struct StorageType {
    const char* name;
    at::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", at::kFloat},   {"HalfStorage", at::kHalf}, {"BFloat16Storage", at::kBFloat16},
    {"DoubleStorage", at::kDouble}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
    {"ByteStorage", at::kByte},     {"CharStorage", at::kChar}, {"BoolStorage", at::kBool},
};

// Loads the storage `key` (numel elements of dtype) from the archive.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

class Unpickler {
public:
    Unpickler(const uint8_t* data, uint64_t size, std::string where, StorageLoader loader)
        : data_(data), size_(size), where_(std::move(where)), loader_(std::move(loader)) {}

    Value* load();

private:
    const uint8_t* need(uint64_t n) {
        AVIARY_CHECK(n <= size_ - pos_, where_, ": pickle ends early at byte ", pos_, " (truncated or corrupt file)");
        const uint8_t* p = data_ + pos_;
        pos_ += n;
        return p;
    }
    uint64_t read_uint(int bytes) {
        const uint8_t* p = need(bytes);
        uint64_t v = 0;
        for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p[k];
        return v;
    }
    std::string read_line() {
        const uint8_t* start = data_ + pos_;
        const void* nl = std::memchr(start, '\n', size_ - pos_);
        AVIARY_CHECK(nl != nullptr, where_, ": pickle GLOBAL name is not terminated (truncated or corrupt file)");
        const uint64_t n = static_cast<const uint8_t*>(nl) - start;
        pos_ += n + 1;
        return std::string(reinterpret_cast<const char*>(start), n);
    }
    Value* make(Kind kind) {
        arena_.emplace_back();
        arena_.back().kind = kind;
        return &arena_.back();
    }
    void push(Value* v) { stack_.push_back(v); }
    Value* pop(const char* op) {
        AVIARY_CHECK(stack_.size() > stack_floor(), where_, ": pickle opcode ", op, " at byte ", op_pos_,
                     " pops an empty stack (corrupt file)");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top(const char* op) {
        AVIARY_CHECK(stack_.size() > stack_floor(), where_, ": pickle opcode ", op, " at byte ", op_pos_,
                     " needs a value on the stack (corrupt file)");
        return stack_.back();
    }
    size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
    std::vector<Value*> pop_mark(const char* op) {
        AVIARY_CHECK(!marks_.empty(), where_, ": pickle opcode ", op, " at byte ", op_pos_,
                     " has no MARK (corrupt file)");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return items;
    }
    Value* expect(Value* v, Kind kind, const char* what) {
        AVIARY_CHECK(v->kind == kind, where_, ": ", what, " should be a ", kind_name(kind), " but is a ",
                     kind_name(v->kind), " (pickle byte ", op_pos_, ")");
        return v;
    }
    void set_item(Value* dict, Value* key, Value* value, const char* op);
    Value* resolve_global(const std::string& module, const std::string& name);
    Value* reduce(Value* callable, Value* args);
    Value* rebuild_tensor(const std::vector<Value*>& args);
    Value* persistent_load(Value* pid);

    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
    uint64_t op_pos_ = 0;
    std::string where_;
    StorageLoader loader_;
    std::deque<Value> arena_;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
    std::unordered_map<std::string, Value*> storages_;
};

void Unpickler::set_item(Value* dict, Value* key, Value* value, const char* op) {
    AVIARY_CHECK(dict->kind == Kind::Dict, where_, ": the target of ", op, " should be a dict but is a ",
                 kind_name(dict->kind), " (pickle byte ", op_pos_, ")");
    if (key->kind == Kind::Str) {
        auto it = dict->index.find(key->s);
        if (it != dict->index.end()) {
            dict->pairs[it->second].second = value;  // Python semantics: a repeated key overwrites
            return;
        }
        dict->index.emplace(key->s, dict->pairs.size());
    }
    dict->pairs.emplace_back(key, value);
}

Value* Unpickler::resolve_global(const std::string& module, const std::string& name) {
    Value* g = make(Kind::Global);
    g->s = module + "." + name;
    if (module == "collections" && name == "OrderedDict") {
        g->global = GlobalId::OrderedDict;
        return g;
    }
    if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
        g->global = GlobalId::RebuildTensorV2;
        return g;
    }
    if (module == "torch._utils" && name == "_rebuild_parameter") {
        g->global = GlobalId::RebuildParameter;
        return g;
    }
    if (module == "torch") {
        for (const StorageType& t : kStorageTypes) {
            if (name == t.name) {
                g->global = GlobalId::StorageType;
                g->dtype = t.dtype;
                return g;
            }
        }
    }
    AVIARY_FAIL(where_, ": refusing pickle global '", g->s, "' (byte ", op_pos_,
                "); a state dict only needs collections.OrderedDict, torch._utils._rebuild_tensor_v2/"
                "_rebuild_parameter and torch.*Storage types — this file is not a plain state dict or is unsafe");
}

Value* Unpickler::reduce(Value* callable, Value* args) {
    expect(callable, Kind::Global, "the callable of REDUCE");
    expect(args, Kind::Tuple, "the arguments of REDUCE");
    const std::vector<Value*>& a = args->items;
    switch (callable->global) {
        case GlobalId::OrderedDict:
            AVIARY_CHECK(a.empty(), where_, ": collections.OrderedDict called with ", a.size(),
                         " arguments; expected none (byte ", op_pos_, ")");
            return make(Kind::Dict);
        case GlobalId::RebuildTensorV2:
            return rebuild_tensor(a);
        case GlobalId::RebuildParameter: {
            // _rebuild_parameter(data, requires_grad, backward_hooks)
            AVIARY_CHECK(a.size() == 3, where_, ": torch._utils._rebuild_parameter called with ", a.size(),
                         " arguments; expected 3 (byte ", op_pos_, ")");
            expect(a[0], Kind::Tensor, "the data of _rebuild_parameter");
            return a[0];
        }
        case GlobalId::StorageType:
            break;
    }
    AVIARY_FAIL(where_, ": refusing to call '", callable->s, "' (byte ", op_pos_,
                "); storage types are only valid inside persistent ids");
}

Value* Unpickler::rebuild_tensor(const std::vector<Value*>& a) {
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    AVIARY_CHECK(a.size() == 6 || a.size() == 7, where_, ": torch._utils._rebuild_tensor_v2 called with ", a.size(),
                 " arguments; expected 6 or 7 (byte ", op_pos_, ")");
    Value* storage = expect(a[0], Kind::Storage, "the storage of _rebuild_tensor_v2");
    const int64_t offset = expect(a[1], Kind::Int, "the storage offset of _rebuild_tensor_v2")->i;
    const auto& sizes_v = expect(a[2], Kind::Tuple, "the size of _rebuild_tensor_v2")->items;
    const auto& strides_v = expect(a[3], Kind::Tuple, "the stride of _rebuild_tensor_v2")->items;
    expect(a[4], Kind::Bool, "requires_grad of _rebuild_tensor_v2");
    AVIARY_CHECK(a[5]->kind == Kind::Dict || a[5]->kind == Kind::None, where_,
                 ": backward_hooks of _rebuild_tensor_v2 should be an OrderedDict (byte ", op_pos_, ")");
    AVIARY_CHECK(a.size() == 6 || a[6]->kind == Kind::Dict || a[6]->kind == Kind::None, where_,
                 ": metadata of _rebuild_tensor_v2 should be a dict or None (byte ", op_pos_, ")");
    AVIARY_CHECK(sizes_v.size() == strides_v.size(), where_, ": tensor has ", sizes_v.size(), " sizes but ",
                 strides_v.size(), " strides (byte ", op_pos_, ")");
    std::vector<int64_t> sizes, strides;
    int64_t numel = 1;
    for (size_t d = 0; d < sizes_v.size(); ++d) {
        const int64_t n = expect(sizes_v[d], Kind::Int, "a tensor size")->i;
        const int64_t s = expect(strides_v[d], Kind::Int, "a tensor stride")->i;
        AVIARY_CHECK(n >= 0 && s >= 0, where_, ": tensor size ", n, " / stride ", s, " is negative (byte ", op_pos_,
                     ")");
        AVIARY_CHECK(!__builtin_mul_overflow(numel, n, &numel), where_, ": tensor element count overflows");
        sizes.push_back(n);
        strides.push_back(s);
    }
    const at::Tensor& data = storage->tensor;
    Value* out = make(Kind::Tensor);
    if (numel == 0) {
        out->tensor = at::empty(sizes, at::TensorOptions().dtype(data.scalar_type()));
        return out;
    }
    // The strided view must stay inside the storage: offset + sum((size-1)*stride) < storage numel.
    int64_t last = offset;
    bool overflow = offset < 0;
    for (size_t d = 0; d < sizes.size() && !overflow; ++d) {
        int64_t step = 0;
        overflow = __builtin_mul_overflow(sizes[d] - 1, strides[d], &step) || __builtin_add_overflow(last, step, &last);
    }
    AVIARY_CHECK(!overflow && last < data.numel(), where_, ": tensor view (offset ", offset, ", ", sizes.size(),
                 " dims, ", numel, " elements) reaches past its storage of ", data.numel(), " elements (corrupt file)");
    at::Tensor view = data.as_strided(sizes, strides, offset);
    // Keep the storage itself when the first tensor covers it exactly; otherwise copy out a compact tensor so
    // that views and slices neither pin nor alias a shared storage (returned tensors never share memory).
    if (offset == 0 && numel == data.numel() && view.is_contiguous() && !storage->handed_out) {
        storage->handed_out = true;
        out->tensor = view;
    } else {
        out->tensor = view.clone(at::MemoryFormat::Contiguous);
    }
    return out;
}

Value* Unpickler::persistent_load(Value* pid) {
    // ('storage', storage_type, key, location, numel)
    expect(pid, Kind::Tuple, "a persistent id");
    const auto& p = pid->items;
    AVIARY_CHECK(p.size() == 5 && p[0]->kind == Kind::Str && p[0]->s == "storage", where_, ": persistent id at byte ",
                 op_pos_, " is not ('storage', type, key, location, numel)");
    Value* type = expect(p[1], Kind::Global, "the storage type of a persistent id");
    AVIARY_CHECK(type->global == GlobalId::StorageType, where_, ": persistent id names '", type->s,
                 "' where a torch.*Storage type was expected (byte ", op_pos_, ")");
    const std::string& key = expect(p[2], Kind::Str, "the storage key of a persistent id")->s;
    expect(p[3], Kind::Str, "the storage location of a persistent id");
    const int64_t numel = expect(p[4], Kind::Int, "the element count of a persistent id")->i;
    AVIARY_CHECK(numel >= 0, where_, ": storage '", key, "' has a negative element count ", numel);
    auto it = storages_.find(key);
    if (it != storages_.end()) {
        AVIARY_CHECK(it->second->dtype == type->dtype && it->second->tensor.numel() == numel, where_, ": storage '",
                     key, "' is referenced with two different types or sizes; expected one typed storage per key");
        return it->second;
    }
    Value* s = make(Kind::Storage);
    s->dtype = type->dtype;
    s->tensor = loader_(key, type->dtype, numel);
    storages_.emplace(key, s);
    return s;
}

Value* Unpickler::load() {
    while (true) {
        op_pos_ = pos_;
        const uint8_t op = *need(1);
        switch (op) {
            case 0x80: {  // PROTO
                const uint64_t v = read_uint(1);
                AVIARY_CHECK(v >= 2 && v <= 5, where_, ": pickle protocol ", v, " is not supported; expected 2 to 5");
                break;
            }
            case 0x95:  // FRAME: the frame length is advisory
                read_uint(8);
                break;
            case '}':
                push(make(Kind::Dict));
                break;  // EMPTY_DICT
            case ']':
                push(make(Kind::List));
                break;  // EMPTY_LIST
            case ')':
                push(make(Kind::Tuple));
                break;  // EMPTY_TUPLE
            case '(':
                marks_.push_back(stack_.size());
                break;   // MARK
            case 't': {  // TUPLE
                Value* t = make(Kind::Tuple);
                t->items = pop_mark("TUPLE");
                push(t);
                break;
            }
            case 0x85:
            case 0x86:
            case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
                const size_t n = op - 0x84;
                Value* t = make(Kind::Tuple);
                t->items.resize(n);
                for (size_t k = n; k-- > 0;) t->items[k] = pop("TUPLEn");
                push(t);
                break;
            }
            case 'q':
                memo_[read_uint(1)] = top("BINPUT");
                break;
            case 'r':
                memo_[read_uint(4)] = top("LONG_BINPUT");
                break;
            case 0x94: {  // MEMOIZE
                Value* v = top("MEMOIZE");
                memo_[memo_.size()] = v;
                break;
            }
            case 'h':
            case 'j': {  // BINGET, LONG_BINGET
                const uint64_t idx = read_uint(op == 'h' ? 1 : 4);
                auto it = memo_.find(idx);
                AVIARY_CHECK(it != memo_.end(), where_, ": pickle BINGET of unknown memo slot ", idx, " at byte ",
                             op_pos_, " (corrupt file)");
                push(it->second);
                break;
            }
            case 'X':
            case 0x8c:
            case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                const uint64_t n = read_uint(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
                const uint8_t* p = need(n);
                Value* v = make(Kind::Str);
                v->s.assign(reinterpret_cast<const char*>(p), n);
                push(v);
                break;
            }
            case 'J': {  // BININT (signed 32-bit)
                Value* v = make(Kind::Int);
                v->i = static_cast<int32_t>(read_uint(4));
                push(v);
                break;
            }
            case 'K':
            case 'M': {  // BININT1, BININT2 (unsigned)
                Value* v = make(Kind::Int);
                v->i = static_cast<int64_t>(read_uint(op == 'K' ? 1 : 2));
                push(v);
                break;
            }
            case 0x8a: {  // LONG1: n bytes of little-endian two's complement
                const uint64_t n = read_uint(1);
                AVIARY_CHECK(n <= 8, where_, ": pickle integer of ", n, " bytes at byte ", op_pos_,
                             " does not fit 64 bits");
                uint64_t u = n == 0 ? 0 : read_uint(static_cast<int>(n));
                if (n > 0 && n < 8 && (u >> (8 * n - 1)) != 0) u |= ~uint64_t(0) << (8 * n);  // sign-extend
                Value* v = make(Kind::Int);
                v->i = static_cast<int64_t>(u);
                push(v);
                break;
            }
            case 0x88:
            case 0x89: {  // NEWTRUE, NEWFALSE
                Value* v = make(Kind::Bool);
                v->b = op == 0x88;
                push(v);
                break;
            }
            case 'N':
                push(make(Kind::None));
                break;
            case 'G': {  // BINFLOAT: big-endian IEEE double
                const uint8_t* p = need(8);
                uint64_t u = 0;
                for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];
                Value* v = make(Kind::Float);
                std::memcpy(&v->f, &u, sizeof(double));
                push(v);
                break;
            }
            case 'c': {  // GLOBAL module\nname\n
                std::string module = read_line();
                std::string name = read_line();
                push(resolve_global(module, name));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                Value* name = expect(pop("STACK_GLOBAL"), Kind::Str, "the name of STACK_GLOBAL");
                Value* module = expect(pop("STACK_GLOBAL"), Kind::Str, "the module of STACK_GLOBAL");
                push(resolve_global(module->s, name->s));
                break;
            }
            case 'R': {  // REDUCE
                Value* args = pop("REDUCE");
                Value* callable = pop("REDUCE");
                push(reduce(callable, args));
                break;
            }
            case 'b': {  // BUILD: only OrderedDict state (the state dict's `_metadata`), which Aviary ignores
                Value* state = pop("BUILD");
                Value* obj = top("BUILD");
                AVIARY_CHECK(obj->kind == Kind::Dict && (state->kind == Kind::Dict || state->kind == Kind::None),
                             where_, ": pickle BUILD on a ", kind_name(obj->kind), " with a ", kind_name(state->kind),
                             " state at byte ", op_pos_, "; only OrderedDict metadata is expected in a state dict");
                break;
            }
            case 's': {  // SETITEM
                Value* value = pop("SETITEM");
                Value* key = pop("SETITEM");
                set_item(top("SETITEM"), key, value, "SETITEM");
                break;
            }
            case 'u': {  // SETITEMS
                std::vector<Value*> kv = pop_mark("SETITEMS");
                AVIARY_CHECK(kv.size() % 2 == 0, where_, ": pickle SETITEMS with an odd number of items at byte ",
                             op_pos_);
                Value* dict = top("SETITEMS");
                for (size_t k = 0; k < kv.size(); k += 2) set_item(dict, kv[k], kv[k + 1], "SETITEMS");
                break;
            }
            case 'a': {  // APPEND
                Value* v = pop("APPEND");
                expect(top("APPEND"), Kind::List, "the target of APPEND")->items.push_back(v);
                break;
            }
            case 'e': {  // APPENDS
                std::vector<Value*> vs = pop_mark("APPENDS");
                Value* list = expect(top("APPENDS"), Kind::List, "the target of APPENDS");
                list->items.insert(list->items.end(), vs.begin(), vs.end());
                break;
            }
            case 'Q':  // BINPERSID
                push(persistent_load(pop("BINPERSID")));
                break;
            case '.':  // STOP
                AVIARY_CHECK(stack_.size() == 1 && marks_.empty(), where_, ": pickle STOP with ", stack_.size(),
                             " values on the stack; expected exactly one (corrupt file)");
                return stack_.back();
            default: {
                char shown = (op >= 0x20 && op < 0x7f) ? static_cast<char>(op) : '?';
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02x", op);
                AVIARY_FAIL(where_, ": refusing pickle opcode ", hex, " ('", shown, "') at byte ", op_pos_,
                            "; only the opcodes of a plain state dict of tensors are allowed");
            }
        }
    }
}

// The flat name -> tensor list from the unpickled top object; also accepts {"state_dict"|"model"|"module": {...}}.
TensorList to_tensor_list(const Value* top, const std::string& path) {
    AVIARY_CHECK(top->kind == Kind::Dict, path, ": top-level object is a ", kind_name(top->kind),
                 "; expected a state dict (dict of name -> tensor)");
    if (top->pairs.size() == 1 && top->pairs[0].first->kind == Kind::Str && top->pairs[0].second->kind == Kind::Dict) {
        const std::string& k = top->pairs[0].first->s;
        if (k == "state_dict" || k == "model" || k == "module") top = top->pairs[0].second;
    }
    TensorList out;
    out.reserve(top->pairs.size());
    for (const auto& [key, value] : top->pairs) {
        AVIARY_CHECK(key->kind == Kind::Str, path, ": state dict has a ", kind_name(key->kind),
                     " key; expected str names");
        AVIARY_CHECK(value->kind == Kind::Tensor, path, ": entry '", key->s, "' is a ", kind_name(value->kind),
                     "; expected a tensor (Aviary reads flat state dicts of tensors only)");
        out.push_back(NamedTensor{key->s, value->tensor});
    }
    return out;
}

}  // namespace

}  // namespace aviary

namespace aviary::detail {

TensorList read_pth(const MappedFile& file) {
    const std::string& path = file.path();
    ZipReader zip(file);

    // torch.save puts everything under one top-level folder whose name varies ("archive/", the file stem, ...).
    const ZipEntry* pkl = nullptr;
    for (const ZipEntry& e : zip.entries()) {
        const size_t slash = e.name.find('/');
        if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
            AVIARY_CHECK(pkl == nullptr, path, ": zip archive has two data.pkl entries ('", pkl->name, "', '", e.name,
                         "'); expected one torch.save checkpoint");
            pkl = &e;
        }
    }
    AVIARY_CHECK(pkl != nullptr, path, ": zip archive has no <folder>/data.pkl; expected a torch.save checkpoint");
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::strlen("data.pkl"));

    if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
        ZipBytes b = zip.read(*bo);
        const std::string order(reinterpret_cast<const char*>(b.data), b.size);
        AVIARY_CHECK(order == "little", path, ": checkpoint byte order is '", order,
                     "'; expected 'little' (big-endian checkpoints are not supported)");
    }

    StorageLoader loader = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
        const std::string name = prefix + "data/" + key;
        const ZipEntry* e = zip.find(name);
        AVIARY_CHECK(e != nullptr, path, ": storage '", name, "' named in data.pkl is missing from the archive");
        ZipBytes bytes = zip.read(*e);
        const uint64_t itemsize = at::elementSize(dtype);
        AVIARY_CHECK(static_cast<uint64_t>(numel) <= bytes.size / itemsize, path, ": storage '", name, "' holds ",
                     bytes.size, " bytes but data.pkl asks for ", numel, " elements of ", itemsize, " bytes");
        const uint64_t nbytes = static_cast<uint64_t>(numel) * itemsize;
        // Bool bytes are read as uint8 and normalised, so a stray byte value cannot make an invalid bool.
        const at::ScalarType load_type = dtype == at::kBool ? at::kByte : dtype;
        at::Tensor t = empty_for_load({numel}, load_type);
        if (nbytes > 0) {
            std::memcpy(t.data_ptr(), bytes.data, nbytes);
            file.release(bytes.data, nbytes);
        }
        return dtype == at::kBool ? t.ne(0) : t;
    };

    ZipBytes pickle = zip.read(*pkl);
    Unpickler unpickler(pickle.data, pickle.size, path + ": " + pkl->name, loader);
    return to_tensor_list(unpickler.load(), path);
}

}  // namespace aviary::detail

namespace aviary {

TensorList read_pth(const std::string& path) {
    const MappedFile file(path);
    return detail::read_pth(file);
}

}  // namespace aviary
