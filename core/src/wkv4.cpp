// RWKV-4 WKV (wkv4.h): the reference follows the official package's att_seq loop for version 4 step by step;
// the parallel form writes every output as a normalised sum over earlier positions in log space, with the
// per-row maximum subtracted (a constant shift of numerator and denominator, so detaching it is exact).
#include "aviary/core/wkv4.h"

#include <torch/torch.h>

#include <limits>

#include "aviary/core/error.h"

namespace aviary {
namespace {

constexpr double kEmptyLogScale = -1e38;  // pp of the empty state (official: -1e30 in fp32)

void check_shapes(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& state) {
    AVIARY_CHECK(k.dim() == 3 && v.sizes() == k.sizes(), "wkv4: k and v must be (B, T, C) of one shape");
    const int64_t C = k.size(2);
    AVIARY_CHECK(w.dim() == 1 && w.size(0) == C && u.dim() == 1 && u.size(0) == C, "wkv4: w and u must be (", C, ")");
    AVIARY_CHECK(!state.defined() ||
                     (state.dim() == 3 && state.size(0) == k.size(0) && state.size(1) == 3 && state.size(2) == C),
                 "wkv4: state must be (B, 3, C) = (", k.size(0), ", 3, ", C, ")");
}

}  // namespace

at::Tensor wkv4_empty_state(int64_t batch, int64_t channels, const at::TensorOptions& options) {
    at::Tensor s = torch::zeros({batch, 3, channels}, options.dtype(at::kFloat));
    s.select(1, 2).fill_(kEmptyLogScale);
    return s;
}

std::pair<at::Tensor, at::Tensor> wkv4_reference(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                                 const at::Tensor& v, const at::Tensor& state) {
    check_shapes(w, u, k, v, state);
    const auto dt = k.scalar_type();
    const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
    at::Tensor s = state.defined() ? state.to(dt) : wkv4_empty_state(B, C, k.options()).to(dt);
    at::Tensor aa = s.select(1, 0), bb = s.select(1, 1), pp = s.select(1, 2);
    const at::Tensor ww_decay = w.to(dt), uu = u.to(dt);
    std::vector<at::Tensor> ys;
    for (int64_t t = 0; t < T; ++t) {
        at::Tensor kk = k.select(1, t).to(dt), vv = v.select(1, t).to(dt);
        // output: p = max(pp, u + k); (e1·aa + e2·v) / (e1·bb + e2)
        at::Tensor ww = uu + kk;
        at::Tensor p = at::maximum(pp, ww);
        at::Tensor e1 = at::exp(pp - p), e2 = at::exp(ww - p);
        ys.push_back((e1 * aa + e2 * vv) / (e1 * bb + e2));
        // state: p = max(w + pp, k); aa = e1·aa + e2·v; bb = e1·bb + e2; pp = p
        ww = ww_decay + pp;
        p = at::maximum(ww, kk);
        e1 = at::exp(ww - p), e2 = at::exp(kk - p);
        aa = e1 * aa + e2 * vv;
        bb = e1 * bb + e2;
        pp = p;
    }
    return {at::stack(ys, 1), at::stack({aa, bb, pp}, 1)};
}

std::pair<at::Tensor, at::Tensor> wkv4_parallel(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                                const at::Tensor& v, const at::Tensor& state, int64_t block) {
    check_shapes(w, u, k, v, state);
    AVIARY_CHECK(block >= 1, "wkv4: block must be >= 1");
    const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
    const auto opt = k.options();
    at::Tensor s = state.defined() ? state.to(k.scalar_type()) : wkv4_empty_state(B, C, opt).to(k.scalar_type());
    const at::Tensor aa = s.select(1, 0), bb = s.select(1, 1), pp = s.select(1, 2);  // (B, C)
    const at::Tensor pos = torch::arange(T, opt);                                    // (T)
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<at::Tensor> ys;
    for (int64_t t0 = 0; t0 < T; t0 += block) {
        const int64_t Tq = std::min(block, T - t0);
        const int64_t Tk = t0 + Tq;  // keys 0 .. t0+Tq-1
        at::Tensor tq = pos.narrow(0, t0, Tq).view({Tq, 1});
        at::Tensor ti = pos.narrow(0, 0, Tk).view({1, Tk});
        at::Tensor dist = (tq - 1 - ti);  // (Tq, Tk): t − 1 − i
        // s[t, i] = (t−1−i)·w + k_i for i < t; u + k_t for i = t; −inf for i > t      (B, Tq, Tk, C)
        at::Tensor kk = k.narrow(1, 0, Tk).unsqueeze(1);  // (B, 1, Tk, C)
        at::Tensor past = dist.view({1, Tq, Tk, 1}) * w.view({1, 1, 1, C}) + kk;
        at::Tensor cur = (u.view({1, 1, 1, C}) + kk).expand_as(past);
        at::Tensor is_past = (ti < tq).view({1, Tq, Tk, 1});
        at::Tensor is_cur = (ti == tq).view({1, Tq, Tk, 1});
        at::Tensor logits = at::where(is_past, past, at::where(is_cur, cur, at::full({}, neg_inf, opt)));
        // the carried state: log scale pp + t·w with numerator aa and denominator bb     (B, Tq, C)
        at::Tensor st = pp.unsqueeze(1) + tq.view({1, Tq, 1}) * w.view({1, 1, C});
        at::Tensor m = at::maximum(std::get<0>(logits.max(2)), st).detach();  // (B, Tq, C)
        at::Tensor e = at::exp(logits - m.unsqueeze(2));                      // (B, Tq, Tk, C)
        at::Tensor es = at::exp(st - m);
        at::Tensor num = (e * v.narrow(1, 0, Tk).unsqueeze(1)).sum(2) + es * aa.unsqueeze(1);
        at::Tensor den = e.sum(2) + es * bb.unsqueeze(1);
        ys.push_back(num / den);
    }
    // final state: s_i = (T−1−i)·w + k_i, and the carried pp + T·w
    at::Tensor sfin = (T - 1 - pos).view({1, T, 1}) * w.view({1, 1, C}) + k;  // (B, T, C)
    at::Tensor scar = pp + double(T) * w.view({1, C});                        // (B, C)
    // P is not detached: (aa, bb) are stored relative to e^P, so unlike y they depend on it (the reference's
    // running maximum takes the same sub-gradient).
    at::Tensor P = at::maximum(std::get<0>(sfin.max(1)), scar);
    at::Tensor ef = at::exp(sfin - P.unsqueeze(1)), ec = at::exp(scar - P);
    at::Tensor aa_out = (ef * v).sum(1) + ec * aa;
    at::Tensor bb_out = ef.sum(1) + ec * bb;
    return {at::cat(ys, 1), at::stack({aa_out, bb_out, P}, 1)};
}

}  // namespace aviary
