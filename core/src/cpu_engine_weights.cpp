// The CPU engine's weights (cpu_engine.h): the model's matrices laid out once in the engine's format (fp32, bf16, or
// int8 with per-row scales; LoRAs transposed, kept fp32 or, in a bf16 / int8 engine, bf16 where that is exact, spec
// §2.8), the per-channel vectors, embedding rows.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "cpu_engine_impl.h"

namespace aviary {

namespace engine_internal {

std::vector<float> to_vector(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace engine_internal

const at::Tensor& CpuEngine::Impl::tensor(const std::map<std::string, at::Tensor>& sd, const std::string& name) {
    auto it = sd.find(name);
    AVIARY_CHECK(it != sd.end(), "CpuEngine: the model has no tensor '", name, "'");
    return it->second;
}

const void* CpuEngine::Impl::place(const at::Tensor& converted, const at::Tensor& original) {
    const size_t bytes = size_t(converted.numel()) * converted.element_size();
    if (converted.data_ptr() == original.data_ptr()) {  // .to()/.contiguous() kept the model's tensor
        keep.push_back(converted);
        return converted.data_ptr();
    }
    void* out = arena.allocate(bytes);
    std::memcpy(out, converted.data_ptr(), bytes);
    return out;
}

MatView CpuEngine::Impl::matrix(const at::Tensor& t0) {
    const at::Tensor t = t0.detach();
    AVIARY_CHECK(t.dim() == 2, "CpuEngine: expected a matrix, got shape ", t.sizes());
    MatView m;
    m.rows = t.size(0);
    m.cols = t.size(1);
    if (dtype == "fp32") {
        m.type = WeightType::F32;
        m.data = place(t.to(at::kFloat).contiguous(), t);  // the model's own fp32 matrix when it is one: no copy
        bytes_per_token += m.rows * m.cols * 4.0;
    } else if (dtype == "bf16") {
        m.type = WeightType::BF16;
        m.data = place(t.to(at::kBFloat16).contiguous(), t);
        bytes_per_token += m.rows * m.cols * 2.0;
    } else {
        const at::Tensor f = t.to(at::kFloat).contiguous();
        auto* q = static_cast<int8_t*>(arena.allocate(size_t(m.rows * m.cols)));
        auto* s = static_cast<float*>(arena.allocate(size_t(m.rows) * sizeof(float)));
        cpu::quantize_rows_int8(f.data_ptr<float>(), m.rows, m.cols, q, s);
        m.type = WeightType::I8;
        m.data = q;
        m.scale = s;
        bytes_per_token += m.rows * m.cols + m.rows * 4.0;
    }
    return m;
}

MatView CpuEngine::Impl::small_matrix(const at::Tensor& t0) {
    const at::Tensor t = t0.detach();
    MatView m;
    m.rows = t.size(0);
    m.cols = t.size(1);
    m.fp32_activations = true;
    // bf16 where that holds every value exactly (a bf16 checkpoint's LoRAs: the model widened them to fp32), so a
    // bf16 / int8 engine reads them at 2 bytes; else fp32. Either way they multiply fp32 activations.
    const at::Tensor f = t.to(at::kFloat);
    const at::Tensor b = dtype != "fp32" ? f.to(at::kBFloat16) : at::Tensor();
    if (b.defined() && at::equal(b.to(at::kFloat), f)) {
        m.type = WeightType::BF16;
        m.data = place(b.contiguous(), t);
        bytes_per_token += m.rows * m.cols * 2.0;
    } else {
        m.type = WeightType::F32;
        m.data = place(f.contiguous(), t);  // the model's own fp32 matrix when it is one: no copy
        bytes_per_token += m.rows * m.cols * 4.0;
    }
    return m;
}

void CpuEngine::Impl::load(const Model& model) {
    std::map<std::string, at::Tensor> sd;
    for (const auto& nt : model.state_dict()) sd[nt.name] = nt.tensor;
    const int64_t D = cfg.n_embd, A = cfg.n_att;
    for (int l = 0; l < cfg.n_layer; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        auto T = [&](const std::string& n) -> const at::Tensor& { return tensor(sd, p + n); };
        Layer L;
        L.ln1_w = to_vector(T("ln1.weight"));
        L.ln1_b = to_vector(T("ln1.bias"));
        L.ln2_w = to_vector(T("ln2.weight"));
        L.ln2_b = to_vector(T("ln2.bias"));
        L.lnx_w = to_vector(T("att.ln_x.weight"));
        L.lnx_b = to_vector(T("att.ln_x.bias"));
        L.u = to_vector(T("att.time_faaaa"));
        if (cfg.version == 5) {
            auto one_minus = [&](const std::string& n) { return to_vector(1.0 - T(n).to(at::kFloat)); };
            L.m_k = one_minus("att.time_mix_k");
            L.m_v = one_minus("att.time_mix_v");
            L.m_r = one_minus("att.time_mix_r");
            L.m_g = one_minus("att.time_mix_g");
            L.ffn_m_k = one_minus("ffn.time_mix_k");
            L.ffn_m_r = one_minus("ffn.time_mix_r");
            // decay = exp(−exp(time_decay)), static per channel (spec §2.3)
            L.decay = to_vector(at::exp(-at::exp(T("att.time_decay").to(at::kFloat))));
        } else {
            L.m_x = to_vector(T("att.time_maa_x"));
            L.m_w = to_vector(T("att.time_maa_w"));
            L.m_k = to_vector(T("att.time_maa_k"));
            L.m_v = to_vector(T("att.time_maa_v"));
            L.m_r = to_vector(T("att.time_maa_r"));
            L.m_g = to_vector(T("att.time_maa_g"));
            L.ffn_m_k = to_vector(T("ffn.time_maa_k"));
            L.ffn_m_r = to_vector(T("ffn.time_maa_r"));
            L.decay = to_vector(T("att.time_decay"));
            // LoRAs are stored (in, out) (spec §1.3): transpose to (out, in) rows for the kernels.
            L.maa_w1t = small_matrix(T("att.time_maa_w1").t());
            const at::Tensor w2 = T("att.time_maa_w2");  // (5, Lm, D)
            for (int c = 0; c < 5; ++c) L.maa_w2t[c] = small_matrix(w2[c].t());
            L.decay_w1t = small_matrix(T("att.time_decay_w1").t());
            L.decay_w2t = small_matrix(T("att.time_decay_w2").t());
            // the prefill's k-major views (the model's own fp32 tensors; a copy only if it holds another dtype), read
            // once per prompt block, not per decoded token: not in bytes_per_token
            auto k_major = [&](const at::Tensor& t) {
                return static_cast<const float*>(place(t.detach().to(at::kFloat).contiguous(), t));
            };
            L.maa_w2 = k_major(w2);
            L.decay_w2 = k_major(T("att.time_decay_w2"));
        }
        L.att_r = matrix(T("att.receptance.weight"));
        L.att_k = matrix(T("att.key.weight"));
        L.att_v = matrix(T("att.value.weight"));
        L.att_g = matrix(T("att.gate.weight"));
        L.att_o = matrix(T("att.output.weight"));
        L.ffn_k = matrix(T("ffn.key.weight"));
        L.ffn_r = matrix(T("ffn.receptance.weight"));
        L.ffn_v = matrix(T("ffn.value.weight"));
        bytes_per_token += 4.0 * (6 * D + 4 * A + 8 * D);  // norms, mixes, decay, u (read each step)
        layers.push_back(std::move(L));
    }
    prefill_flops_per_token = sequence_flops_per_token(cfg);  // config.h
    ln0_w = to_vector(tensor(sd, "blocks.0.ln0.weight"));
    ln0_b = to_vector(tensor(sd, "blocks.0.ln0.bias"));
    ln_out_w = to_vector(tensor(sd, "ln_out.weight"));
    ln_out_b = to_vector(tensor(sd, "ln_out.bias"));
    head = matrix(tensor(sd, "head.weight"));
    const double before = bytes_per_token;
    emb = matrix(tensor(sd, "emb.weight"));
    // One embedding row per token, not the table.
    bytes_per_token = before + (bytes_per_token - before) / static_cast<double>(emb.rows);
}

void CpuEngine::Impl::embedding_row(int64_t token, float* out) const {
    const int64_t D = emb.cols, off = token * D;
    switch (emb.type) {
        case WeightType::F32:
            std::copy_n(static_cast<const float*>(emb.data) + off, D, out);
            break;
        case WeightType::BF16:
            for (int64_t i = 0; i < D; ++i) out[i] = cpu::bf16_to_fp32(static_cast<const uint16_t*>(emb.data)[off + i]);
            break;
        case WeightType::I8:
            for (int64_t i = 0; i < D; ++i) out[i] = static_cast<const int8_t*>(emb.data)[off + i] * emb.scale[token];
            break;
    }
}

}  // namespace aviary
