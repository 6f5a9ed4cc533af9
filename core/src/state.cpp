// State (spec §3): clone, size, and save/load as safetensors with keys state.{l}.att_shift / .wkv / .ffn_shift.
#include "aviary/core/state.h"

#include <ATen/ATen.h>

#include "aviary/core/error.h"

namespace aviary {

int64_t State::batch() const { return wkv.empty() ? 0 : wkv.front().size(0); }

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

State State::load(const std::string& path, Metadata* metadata) {
    Metadata meta;
    TensorList list = read_safetensors(path, &meta);
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
        AVIARY_CHECK(std::sscanf(nt.name.c_str(), "state.%d.%31s", &l, part) == 2 && l >= 0 && l < L,
                     "'", path, "': unexpected tensor '", nt.name, "'");
        const std::string p(part);
        at::Tensor t = nt.tensor.to(at::kFloat);
        if (p == "att_shift") s.att_shift[l] = t;
        else if (p == "wkv") s.wkv[l] = t;
        else if (p == "ffn_shift") s.ffn_shift[l] = t;
        else AVIARY_FAIL("'", path, "': unexpected tensor '", nt.name, "'");
    }
    for (int l = 0; l < L; ++l) {
        AVIARY_CHECK(s.att_shift[l].defined() && s.wkv[l].defined() && s.ffn_shift[l].defined(), "'", path,
                     "': layer ", l, " is incomplete");
        AVIARY_CHECK(s.wkv[l].dim() == 4 && s.att_shift[l].dim() == 2 && s.ffn_shift[l].dim() == 2 &&
                         s.wkv[l].size(0) == s.att_shift[l].size(0),
                     "'", path, "': layer ", l, " has inconsistent shapes");
    }
    if (metadata) *metadata = meta;
    return s;
}

}  // namespace aviary
