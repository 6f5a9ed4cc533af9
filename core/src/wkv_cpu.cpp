// WKV on the CPU as one fused loop per (sequence, head), forward and backward (a LibTorch autograd Function). The
// loops themselves, one build per instruction set, are in wkv_cpu_body.inc (wkv_cpu_loops.h); this file prepares the
// tensors, picks the version and splits the heads between the threads (threads.h parallel_for_shares).
//
// Forward keeps the state every kCheckpoint tokens; backward recomputes the states inside each span from its
// checkpoint, so memory is O(T/16 · N²) per head instead of the chunked form's (chunk × chunk × N) tensors. The decay
// w = exp(log_w) is computed once per call, vectorised, on log_w as given (RWKV-5's, broadcast over B and T, is H·N
// values), and read through strides rather than expanded.
#include <torch/torch.h>

#include <atomic>
#include <string>
#include <vector>

#include "aviary/core/threads.h"
#include "aviary/core/wkv.h"
#include "wkv_common.h"
#include "wkv_cpu_loops.h"

namespace aviary {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using wkv_loops::Dims;
using wkv_loops::Version;

// The versions this CPU runs, narrowest first.
const std::vector<const Version*>& versions() {
    static const std::vector<const Version*> list = [] {
        std::vector<const Version*> v{&wkv_loops::version_scalar(), &wkv_loops::version_baseline()};
#if defined(__x86_64__) && defined(__GNUC__)
        const bool fma = __builtin_cpu_supports("fma");
        if (wkv_loops::version_avx2() && fma && __builtin_cpu_supports("avx2")) v.push_back(wkv_loops::version_avx2());
        if (wkv_loops::version_avx512() && fma && __builtin_cpu_supports("avx512f"))
            v.push_back(wkv_loops::version_avx512());
#endif
        return v;
    }();
    return list;
}

std::atomic<const Version*> forced_version{nullptr};  // set_wkv_cpu_version

const Version& version_for(int64_t N) {
    if (const Version* f = forced_version.load()) {
        AVIARY_CHECK(N % f->lanes == 0, "wkv_cpu: version '", f->name, "' needs a head size that is a multiple of ",
                     f->lanes, ", got ", N);
        return *f;
    }
    const auto& list = versions();
    for (auto it = list.rbegin(); it != list.rend(); ++it)
        if (N % (*it)->lanes == 0) return **it;
    return *list.front();  // scalar: one lane
}

struct Prepared {
    wkv_loops::Inputs in;
    at::Tensor r, k, v, w, u, s0;  // fp32; w the decay, (B, T, H, N) possibly by stride 0; s0 undefined = zeros
};

Prepared prepare(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                 const at::Tensor& u, const at::Tensor& state) {
    const bool has_state = state.defined() && state.numel() > 0;
    const auto s = detail::check_wkv_inputs(r, k, v, log_w, u, has_state ? state : at::Tensor());
    Prepared p;
    p.r = r.to(at::kFloat).contiguous();
    p.k = k.to(at::kFloat).contiguous();
    p.v = v.to(at::kFloat).contiguous();
    p.w = log_w.to(at::kFloat).exp().expand({s.B, s.T, s.H, s.N});
    if (p.w.stride(3) != 1 || p.w.stride(2) != s.N) p.w = p.w.contiguous();
    p.u = u.to(at::kFloat).contiguous();
    if (has_state) p.s0 = state.to(at::kFloat).contiguous();
    p.in = {{s.B, s.T, s.H, s.N},  p.r.data_ptr<float>(), p.k.data_ptr<float>(), p.v.data_ptr<float>(),
            p.w.data_ptr<float>(), p.u.data_ptr<float>(), p.w.stride(0),         p.w.stride(1)};
    return p;
}

const float* ptr_or_null(const at::Tensor& t) {
    return t.defined() ? t.data_ptr<float>() : nullptr;
}

// Forward over every head; ckpt undefined = no checkpoints (inference).
void run_forward(const Prepared& p, at::Tensor& y, at::Tensor& s_out, at::Tensor* ckpt) {
    const Dims& d = p.in.d;
    const auto f32 = p.r.options();
    y = at::empty({d.B, d.T, d.H, d.N}, f32);
    s_out = at::empty({d.B, d.H, d.N, d.N}, f32);
    if (ckpt) *ckpt = at::empty({d.B, d.H, d.spans(), d.N, d.N}, f32);
    const Version& ver = version_for(d.N);
    const float* s0 = ptr_or_null(p.s0);
    float *yp = y.data_ptr<float>(), *sp = s_out.data_ptr<float>(), *cp = ckpt ? ckpt->data_ptr<float>() : nullptr;
    parallel_for_shares(d.B * d.H, [&](int64_t begin, int64_t end) {
        for (int64_t bh = begin; bh < end; ++bh) ver.forward(p.in, bh, s0, yp, sp, cp);
    });
}

class WkvCpuFunction : public torch::autograd::Function<WkvCpuFunction> {
public:
    static tensor_list forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
        Prepared p = prepare(r, k, v, log_w, u, state);
        at::Tensor y, s_out, ckpt;
        run_forward(p, y, s_out, &ckpt);
        ctx->save_for_backward({p.r, p.k, p.v, p.w, p.u, ckpt});
        ctx->saved_data["dtypes"] =
            std::vector<int64_t>{int64_t(r.scalar_type()),     int64_t(k.scalar_type()), int64_t(v.scalar_type()),
                                 int64_t(log_w.scalar_type()), int64_t(u.scalar_type()), int64_t(state.scalar_type())};
        ctx->saved_data["lw_shape"] = log_w.sizes().vec();
        ctx->saved_data["s_shape"] = state.sizes().vec();
        ctx->saved_data["has_state"] = state.numel() > 0;
        ctx->set_materialize_grads(false);
        return {y, s_out};
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grad_out) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &r = saved[0], &k = saved[1], &v = saved[2], &w = saved[3], &u = saved[4], &ckpt = saved[5];
        const Dims d{r.size(0), r.size(1), r.size(2), r.size(3)};
        const wkv_loops::Inputs in{d,
                                   r.data_ptr<float>(),
                                   k.data_ptr<float>(),
                                   v.data_ptr<float>(),
                                   w.data_ptr<float>(),
                                   u.data_ptr<float>(),
                                   w.stride(0),
                                   w.stride(1)};
        const auto f32 = r.options();
        const at::Tensor gy =
            grad_out[0].defined() ? grad_out[0].to(at::kFloat).contiguous() : at::zeros({d.B, d.T, d.H, d.N}, f32);
        const at::Tensor gs_out = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous() : at::Tensor();
        at::Tensor gr = at::empty_like(r), gk = at::empty_like(r), gv = at::empty_like(r), glw = at::empty_like(r);
        at::Tensor gu = at::empty({d.B, d.H, d.N}, f32);
        const bool want_gs0 = ctx->saved_data["has_state"].toBool() && ctx->needs_input_grad(5);
        at::Tensor gs0 = want_gs0 ? at::empty({d.B, d.H, d.N, d.N}, f32) : at::Tensor();
        const wkv_loops::Grads g{gy.data_ptr<float>(), ptr_or_null(gs_out),
                                 gr.data_ptr<float>(), gk.data_ptr<float>(),
                                 gv.data_ptr<float>(), glw.data_ptr<float>(),
                                 gu.data_ptr<float>(), want_gs0 ? gs0.data_ptr<float>() : nullptr};
        const Version& ver = version_for(d.N);
        const float* cp = ckpt.data_ptr<float>();
        parallel_for_shares(d.B * d.H, [&](int64_t begin, int64_t end) {
            std::vector<float> scratch(wkv_loops::scratch_floats(d.N));
            for (int64_t bh = begin; bh < end; ++bh) ver.backward(in, bh, cp, g, scratch.data());
        });
        const auto dt = ctx->saved_data["dtypes"].toIntVector();
        auto as = [&](const at::Tensor& t, size_t i) { return t.to(static_cast<at::ScalarType>(dt[i])); };
        at::Tensor glw_in = at::sum_to(glw, ctx->saved_data["lw_shape"].toIntVector());  // undo the broadcast
        at::Tensor gs0_in;
        if (want_gs0) gs0_in = as(gs0.reshape(ctx->saved_data["s_shape"].toIntVector()), 5);
        return {as(gr, 0), as(gk, 1), as(gv, 2), as(glw_in, 3), as(gu.sum(0), 4), gs0_in};
    }
};

}  // namespace

std::vector<std::string> wkv_cpu_versions() {
    std::vector<std::string> names;
    for (const Version* v : versions()) names.emplace_back(v->name);
    return names;
}

void set_wkv_cpu_version(const std::string& name) {
    if (name.empty()) {
        forced_version.store(nullptr);
        return;
    }
    for (const Version* v : versions())
        if (name == v->name) {
            forced_version.store(v);
            return;
        }
    AVIARY_FAIL(
        "wkv_cpu: unknown version '", name, "' (this CPU runs: ",
        [] {
            std::string s;
            for (const auto& n : wkv_cpu_versions()) s += (s.empty() ? "" : ", ") + n;
            return s;
        }(),
        ")");
}

std::string wkv_cpu_version_for(int64_t head_size) {
    return version_for(head_size).name;
}

std::pair<at::Tensor, at::Tensor> wkv_cpu(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                          const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
    AVIARY_CHECK(r.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu() && log_w.device().is_cpu() &&
                     u.device().is_cpu() && (!state.defined() || state.device().is_cpu()),
                 "wkv_cpu: every input must be a CPU tensor");
    const bool grad = at::GradMode::is_enabled() &&
                      (r.requires_grad() || k.requires_grad() || v.requires_grad() || log_w.requires_grad() ||
                       u.requires_grad() || (state.defined() && state.requires_grad()));
    if (!grad) {  // inference: no checkpoints, no graph
        Prepared p = prepare(r, k, v, log_w, u, state);
        at::Tensor y, s_out;
        run_forward(p, y, s_out, nullptr);
        return {y, s_out};
    }
    // autograd Functions take defined tensors: "no initial state" travels as an empty fp32 tensor
    const at::Tensor s = state.defined() ? state : at::empty({0}, r.options().dtype(at::kFloat));
    auto out = WkvCpuFunction::apply(r, k, v, log_w, u, s);
    return {out[0], out[1]};
}

}  // namespace aviary
