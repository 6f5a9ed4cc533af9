// State (spec §3): clone, size, and save/load as safetensors with keys state.{l}.att_shift / .wkv / .ffn_shift.
#include "aviary/core/state.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "checkpoint_readers.h"

namespace aviary {

int64_t State::batch() const {
    return wkv.empty() ? 0 : wkv.front().size(0);
}

size_t State::bytes() const {
    size_t n = 0;
    for (const auto* v : {&att_shift, &wkv, &ffn_shift})
        for (const auto& t : *v) n += t.numel() * t.element_size();
    return n;
}

State State::clone() const {
    State s;
    for (const auto& t : att_shift) s.att_shift.push_back(t.clone());
    for (const auto& t : wkv) s.wkv.push_back(t.clone());
    for (const auto& t : ffn_shift) s.ffn_shift.push_back(t.clone());
    return s;
}

State State::row(int64_t b) const {
    AVIARY_CHECK(b >= 0 && b < batch(), "State::row: row ", b, " is outside the batch of ", batch());
    State s;
    for (const auto& t : att_shift) s.att_shift.push_back(t.narrow(0, b, 1).clone());
    for (const auto& t : wkv) s.wkv.push_back(t.narrow(0, b, 1).clone());
    for (const auto& t : ffn_shift) s.ffn_shift.push_back(t.narrow(0, b, 1).clone());
    return s;
}

State State::stack(const std::vector<const State*>& states) {
    AVIARY_CHECK(!states.empty(), "State::stack: no states given");
    const int L = states.front()->n_layer();
    for (const State* s : states)
        AVIARY_CHECK(s->n_layer() == L, "State::stack: a state has ", s->n_layer(), " layers, the first has ", L);
    State out;
    std::vector<at::Tensor> parts(states.size());
    for (auto [src, dst] : {std::pair{&State::att_shift, &out.att_shift}, std::pair{&State::wkv, &out.wkv},
                            std::pair{&State::ffn_shift, &out.ffn_shift}}) {
        for (int l = 0; l < L; ++l) {
            for (size_t i = 0; i < states.size(); ++i) parts[i] = (states[i]->*src)[l];
            dst->push_back(at::cat(parts, 0));  // throws on shape mismatch (LibTorch names the sizes)
        }
    }
    return out;
}

void State::save(const std::string& path, const Metadata& metadata) const {
    TensorList list;
    for (int l = 0; l < n_layer(); ++l) {
        const std::string p = "state." + std::to_string(l) + ".";
        list.push_back({p + "att_shift", att_shift[l].detach().cpu()});
        list.push_back({p + "wkv", wkv[l].detach().cpu()});
        list.push_back({p + "ffn_shift", ffn_shift[l].detach().cpu()});
    }
    Metadata meta = metadata;
    meta["format"] = "aviary.state.v1";
    meta["n_layer"] = std::to_string(n_layer());
    write_safetensors(path, list, meta);
}

namespace {

// A state file (mapped, or bytes in memory) as State::load reads it; errors name file.path().
State load_state(const detail::MappedFile& file, Metadata* metadata) {
    const std::string& path = file.path();
    Metadata meta;
    TensorList list = detail::read_safetensors(file, &meta);
    AVIARY_CHECK(meta.count("format") && meta["format"] == "aviary.state.v1", "'", path,
                 "' is not an Aviary state file (expected metadata format=aviary.state.v1)");
    AVIARY_CHECK(list.size() % 3 == 0 && !list.empty(), "'", path, "': expected 3 tensors per layer");
    const int L = static_cast<int>(list.size() / 3);
    State s;
    s.att_shift.resize(L);
    s.wkv.resize(L);
    s.ffn_shift.resize(L);
    for (const auto& nt : list) {
        int l = -1;
        char part[32] = {0};
        AVIARY_CHECK(std::sscanf(nt.name.c_str(), "state.%d.%31s", &l, part) == 2 && l >= 0 && l < L, "'", path,
                     "': unexpected tensor '", nt.name, "'");
        const std::string p(part);
        at::Tensor t = nt.tensor.to(at::kFloat);
        if (p == "att_shift")
            s.att_shift[l] = t;
        else if (p == "wkv")
            s.wkv[l] = t;
        else if (p == "ffn_shift")
            s.ffn_shift[l] = t;
        else
            AVIARY_FAIL("'", path, "': unexpected tensor '", nt.name, "'");
    }
    for (int l = 0; l < L; ++l) {
        AVIARY_CHECK(s.att_shift[l].defined() && s.wkv[l].defined() && s.ffn_shift[l].defined(), "'", path, "': layer ",
                     l, " is incomplete");
        AVIARY_CHECK(s.wkv[l].dim() == 4 && s.att_shift[l].dim() == 2 && s.ffn_shift[l].dim() == 2 &&
                         s.wkv[l].size(0) == s.att_shift[l].size(0),
                     "'", path, "': layer ", l, " has inconsistent shapes");
    }
    if (metadata) *metadata = meta;
    return s;
}

}  // namespace

State State::load(const std::string& path, Metadata* metadata) {
    return load_state(detail::MappedFile(path), metadata);
}

State State::load_bytes(const void* data, size_t size, const std::string& source, Metadata* metadata) {
    return load_state(detail::MappedFile(static_cast<const uint8_t*>(data), size, source), metadata);
}

namespace {
constexpr const char* kFingerprintKey = "aviary.state.model";

std::string shape_text(const at::Tensor& t) {
    std::string s = "(";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + ")";
}
}  // namespace

std::string state_fingerprint(const Model& model) {
    const ModelConfig& c = model.config();
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the weights' bf16 bit patterns
    for (const auto& nt : model.state_dict()) {
        const bool norm = nt.name == "ln_out.weight" || nt.name == "ln_out.bias" || nt.name == "blocks.0.ln1.weight";
        if (!norm && nt.name != "head.weight" && nt.name != "emb.weight") continue;
        const at::Tensor flat = nt.tensor.detach().reshape({-1});
        // the norms whole; of the two big matrices 4096 values spread over them
        const int64_t step = norm ? 1 : std::max<int64_t>(1, flat.numel() / 4096);
        const at::Tensor t = flat.slice(0, 0, flat.numel(), step).to(at::kCPU, at::kFloat).contiguous();
        const float* p = t.data_ptr<float>();
        for (int64_t i = 0; i < t.numel(); ++i) {
            const uint16_t b = cpu::fp32_to_bf16(p[i]);
            h = (h ^ (b & 0xff)) * 1099511628211ull;
            h = (h ^ (b >> 8)) * 1099511628211ull;
        }
    }
    char hash[24];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h));
    return "v" + c.version_string() + " L" + std::to_string(c.n_layer) + " D" + std::to_string(c.n_embd) + " H" +
           std::to_string(c.n_head) + " V" + std::to_string(c.vocab_size) + " #" + hash;
}

void State::save_for(const Model& model, const std::string& path, Metadata metadata) const {
    metadata[kFingerprintKey] = state_fingerprint(model);
    save(path, metadata);
}

namespace {
// load_for's check of a state against the model; errors name `path` (the file, or the name given with the bytes).
void check_state_for(const Model& model, const State& s, const Metadata& meta, const std::string& path) {
    const std::string mine = state_fingerprint(model);
    const auto it = meta.find(kFingerprintKey);
    const std::string theirs = it == meta.end() ? std::string() : it->second;
    const std::string saved_from = theirs.empty() ? std::string() : " (saved from " + theirs + ")";
    AVIARY_CHECK(s.n_layer() == model.config().n_layer, "'", path, "' holds a state of ", s.n_layer(), " layers",
                 saved_from, " but the model has ", model.config().n_layer, " (", mine, "): a state of another model");
    const State fresh = model.new_state(s.batch());
    for (int l = 0; l < s.n_layer(); ++l) {
        for (auto [a, b, what] : {std::make_tuple(&s.att_shift[l], &fresh.att_shift[l], "att_shift"),
                                  std::make_tuple(&s.wkv[l], &fresh.wkv[l], "wkv"),
                                  std::make_tuple(&s.ffn_shift[l], &fresh.ffn_shift[l], "ffn_shift")})
            AVIARY_CHECK(a->sizes() == b->sizes(), "'", path, "' layer ", l, " ", what, " has shape ", shape_text(*a),
                         saved_from, ", this model needs ", shape_text(*b), " (", mine, "): a state of another model");
    }
    AVIARY_CHECK(theirs.empty() || theirs == mine, "'", path, "' was saved from another model (", theirs,
                 ") than this one (", mine, ")");
}
}  // namespace

State State::load_for(const Model& model, const std::string& path, Metadata* metadata) {
    Metadata meta;
    State s = load(path, &meta);
    check_state_for(model, s, meta, path);
    if (metadata) *metadata = meta;
    return s;
}

State State::load_for_bytes(const Model& model, const void* data, size_t size, const std::string& source,
                            Metadata* metadata) {
    Metadata meta;
    State s = load_bytes(data, size, source, &meta);
    check_state_for(model, s, meta, source);
    if (metadata) *metadata = meta;
    return s;
}

}  // namespace aviary
