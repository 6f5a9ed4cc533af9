// LoRA adapters and state tuning on the Model (model.h "fine-tuning"): adapters on the matrices chosen by glob
// (PEFT-style init: A ~ Kaiming-uniform, B = 0), merging and export with the official keys, and the trainable initial
// WKV state `time_state` of the official RWKV_Tmix_x060_state (LM RWKV-v5/src/model.py @86affd7; spec §7.2).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "aviary/core/error.h"
#include "aviary/core/glob.h"
#include "aviary/core/model.h"
#include "model_impl.h"

namespace aviary {

using namespace model_internal;

namespace {

// Every matrix of the model by its module name ("blocks.0.att.key", "head"), adapters excluded.
std::vector<std::pair<std::string, std::shared_ptr<MatrixImpl>>> matrices_of(const Rwkv& net) {
    std::vector<std::pair<std::string, std::shared_ptr<MatrixImpl>>> out;
    for (const auto& item : net->named_modules("", /*include_self=*/false)) {
        auto m = std::dynamic_pointer_cast<MatrixImpl>(item.value());
        const std::string& name = item.key();
        if (m && name.find(".lora_") == std::string::npos) out.emplace_back(name, m);
    }
    return out;
}

// "blocks.3.att.key" -> "att.key"; other names unchanged.
std::string name_in_block(const std::string& name) {
    if (name.rfind("blocks.", 0) != 0) return name;
    const size_t dot = name.find('.', 7);
    return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool is_lora_name(const std::string& name) {
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

// (α/r)·B·A   (out, in) fp32
at::Tensor lora_delta(const MatrixImpl& m) {
    return at::matmul(m.lora_B->weight.detach(), m.lora_A->weight.detach()) * m.lora_scale;
}

}  // namespace

int Model::add_lora(const LoraOptions& o) {
    AVIARY_CHECK(!impl_->has_lora, "the model already has LoRA adapters");
    AVIARY_CHECK(o.rank >= 1, "LoRA rank must be >= 1, got ", o.rank);
    AVIARY_CHECK(o.alpha > 0, "LoRA alpha must be > 0, got ", o.alpha);
    AVIARY_CHECK(!o.targets.empty(), "LoRA needs at least one target (e.g. att.key)");
    std::vector<bool> used(o.targets.size(), false);
    std::vector<std::shared_ptr<MatrixImpl>> chosen;
    for (const auto& [name, m] : matrices_of(impl_->net)) {
        bool hit = false;
        for (size_t i = 0; i < o.targets.size(); ++i) {
            if (glob_match(o.targets[i], name) || glob_match(o.targets[i], name_in_block(name))) {
                used[i] = true;
                hit = true;
            }
        }
        if (hit) chosen.push_back(m);
    }
    for (size_t i = 0; i < o.targets.size(); ++i)
        AVIARY_CHECK(used[i], "LoRA target '", o.targets[i],
                     "' matches no matrix (names look like att.key, att.output, ffn.value, head)");
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    torch::NoGradGuard no_grad;
    for (auto& m : chosen) {
        const int64_t out = m->weight.size(0), in = m->weight.size(1);
        // A (r, in) ~ U(±1/√in): kaiming_uniform_(a=√5) of nn.Linear; B (out, r) = 0
        const double bound = 1.0 / std::sqrt(double(in));
        auto A = std::make_shared<MatrixImpl>(in, o.rank);
        A->weight.set_data((at::rand({o.rank, in}, gen, f32) * (2 * bound) - bound).to(impl_->device));
        auto B = std::make_shared<MatrixImpl>(o.rank, out);
        B->weight.set_data(at::zeros({out, o.rank}, f32.device(impl_->device)));
        A->weight.set_requires_grad(impl_->training);
        B->weight.set_requires_grad(impl_->training);
        m->lora_A = m->register_module("lora_A", A);
        m->lora_B = m->register_module("lora_B", B);
        m->lora_scale = o.alpha / double(o.rank);
    }
    impl_->lora = o;
    impl_->has_lora = true;
    return int(chosen.size());
}

bool Model::has_lora() const {
    return impl_->has_lora;
}
const LoraOptions& Model::lora_options() const {
    return impl_->lora;
}

TensorList Model::lora_state_dict() const {
    TensorList out;
    for (const auto& nt : state_dict())
        if (is_lora_name(nt.name)) out.push_back(nt);
    return out;
}

void Model::merge_lora() {
    torch::NoGradGuard no_grad;
    for (auto& [name, m] : matrices_of(impl_->net)) {
        if (!m->lora_A) continue;
        // W += (α/r)·B·A
        m->weight.add_(lora_delta(*m).to(m->weight.scalar_type()));
        m->unregister_module("lora_A");
        m->unregister_module("lora_B");
        m->lora_A.reset();
        m->lora_B.reset();
        m->lora_scale = 0;
    }
    impl_->has_lora = false;
}

TensorList Model::export_state_dict() const {
    std::map<std::string, std::shared_ptr<MatrixImpl>> adapted;
    for (const auto& [name, m] : matrices_of(impl_->net))
        if (m->lora_A) adapted[name + ".weight"] = m;
    TensorList out;
    for (const auto& nt : state_dict()) {
        if (is_lora_name(nt.name)) continue;
        auto it = adapted.find(nt.name);
        if (it == adapted.end()) {
            out.push_back({nt.name, nt.tensor.detach()});
        } else {
            const at::Tensor& w = it->second->weight;
            out.push_back({nt.name, (w.detach().to(at::kFloat) + lora_delta(*it->second)).to(w.scalar_type())});
        }
    }
    return out;
}

void Model::add_time_state() {
    auto& c = impl_->config;
    if (c.has_time_state) return;
    AVIARY_CHECK(c.version != 4, "state tuning (time_state) needs an RWKV-5/6 model; RWKV-4 has no matrix state");
    torch::NoGradGuard no_grad;
    for (int l = 0; l < c.n_layer; ++l) {
        auto& att = impl_->net->blocks[l]->as<BlockImpl>()->att;
        // (H, N_value, N_key), zeros as the official RWKV_Tmix_x060_state (spec §7.2)
        att->time_state = att->register_parameter(
            "time_state", at::zeros({c.n_head, c.head_size, c.head_size}, at::TensorOptions().device(impl_->device)),
            /*requires_grad=*/impl_->training);
    }
    c.has_time_state = true;
}

}  // namespace aviary
