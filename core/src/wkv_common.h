// Internal helpers shared by the WKV paths: shape checks and fp32 conversion of the inputs.
#pragma once
#include <ATen/ATen.h>

#include "aviary/core/error.h"

namespace aviary::detail {

struct WkvShape {
    int64_t B, T, H, N;
};

// Checks r/k/v (B,T,H,N), log_w broadcastable to it, u (H,N), state (B,H,N,N) or undefined.
inline WkvShape check_wkv_inputs(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                                 const at::Tensor& u, const at::Tensor& state) {
    AVIARY_CHECK(r.dim() == 4, "wkv: r must be (B, T, H, N), got ", r.dim(), "-D");
    WkvShape s{r.size(0), r.size(1), r.size(2), r.size(3)};
    AVIARY_CHECK(k.sizes() == r.sizes() && v.sizes() == r.sizes(),
                 "wkv: r, k, v must have the same shape (B, T, H, N)");
    AVIARY_CHECK(log_w.dim() == 4 && (log_w.size(0) == 1 || log_w.size(0) == s.B) &&
                     (log_w.size(1) == 1 || log_w.size(1) == s.T) && log_w.size(2) == s.H && log_w.size(3) == s.N,
                 "wkv: log_w must be broadcastable to (B, T, H, N)");
    AVIARY_CHECK(u.dim() == 2 && u.size(0) == s.H && u.size(1) == s.N, "wkv: u must be (H, N)");
    if (state.defined())
        AVIARY_CHECK(state.dim() == 4 && state.size(0) == s.B && state.size(1) == s.H && state.size(2) == s.N &&
                         state.size(3) == s.N,
                     "wkv: state must be (B, H, N, N)");
    return s;
}

}  // namespace aviary::detail
