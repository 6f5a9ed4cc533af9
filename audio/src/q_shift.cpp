// Q-Shift per head (VRWKV6 `q_shift_multihead`, ../shared/reference/multimodal_spec.md B.1/E.7): quarters of each
// head's channels take the left / right / upper / lower patch neighbour, zero at the borders. Two forms: slicing
// (differentiable, used by the model) and explicit loops (the oracle).
#include "aviary/audio/q_shift.h"

#include <torch/torch.h>

#include "aviary/core/error.h"

namespace aviary::audio {

namespace {
void check_args(const at::Tensor& x, int64_t gh, int64_t gw, int64_t n_head) {
    AVIARY_CHECK(x.dim() == 3, "q_shift: expected tokens (B, N, C), got ", x.dim(), " dimensions");
    AVIARY_CHECK(gh > 0 && gw > 0 && x.size(1) == gh * gw, "q_shift: ", x.size(1), " tokens do not fill a ", gh, "×",
                 gw, " patch grid");
    AVIARY_CHECK(n_head > 0 && x.size(2) % n_head == 0, "q_shift: ", x.size(2), " channels are not divisible by ",
                 n_head, " heads");
}
}  // namespace

at::Tensor q_shift(const at::Tensor& x, int64_t gh, int64_t gw, int64_t n_head) {
    check_args(x, gh, gw, n_head);
    const int64_t B = x.size(0), C = x.size(2), hs = C / n_head, q = hs / 4;
    at::Tensor g = x.reshape({B, gh, gw, n_head, hs});  // (B, Hg, Wg, H, hs)
    at::Tensor out = torch::zeros_like(g);
    using torch::indexing::None;
    using torch::indexing::Slice;
    // quarter 0: X†[h, w] = X[h, w−1] (from the left)
    out.index({Slice(), Slice(), Slice(1, None), Slice(), Slice(0, q)})
        .copy_(g.index({Slice(), Slice(), Slice(0, gw - 1), Slice(), Slice(0, q)}));
    // quarter 1: X†[h, w] = X[h, w+1] (from the right)
    out.index({Slice(), Slice(), Slice(0, gw - 1), Slice(), Slice(q, 2 * q)})
        .copy_(g.index({Slice(), Slice(), Slice(1, None), Slice(), Slice(q, 2 * q)}));
    // quarter 2: X†[h, w] = X[h−1, w] (from above)
    out.index({Slice(), Slice(1, None), Slice(), Slice(), Slice(2 * q, 3 * q)})
        .copy_(g.index({Slice(), Slice(0, gh - 1), Slice(), Slice(), Slice(2 * q, 3 * q)}));
    // quarter 3: X†[h, w] = X[h+1, w] (from below)
    out.index({Slice(), Slice(0, gh - 1), Slice(), Slice(), Slice(3 * q, 4 * q)})
        .copy_(g.index({Slice(), Slice(1, None), Slice(), Slice(), Slice(3 * q, 4 * q)}));
    if (4 * q < hs)  // leftover channels unshifted
        out.index({Slice(), Slice(), Slice(), Slice(), Slice(4 * q, None)})
            .copy_(g.index({Slice(), Slice(), Slice(), Slice(), Slice(4 * q, None)}));
    return out.reshape({B, gh * gw, C});
}

at::Tensor q_shift_reference(const at::Tensor& x_in, int64_t gh, int64_t gw, int64_t n_head) {
    check_args(x_in, gh, gw, n_head);
    at::Tensor x = x_in.detach().to(torch::kDouble).contiguous();
    const int64_t B = x.size(0), C = x.size(2), hs = C / n_head, q = hs / 4;
    at::Tensor out = torch::zeros_like(x);
    auto xa = x.accessor<double, 3>();
    auto oa = out.accessor<double, 3>();
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < gh; ++h)
            for (int64_t w = 0; w < gw; ++w)
                for (int64_t c = 0; c < C; ++c) {
                    const int64_t quarter = (c % hs) / q;  // q == 0 only when hs < 4: all channels unshifted
                    int64_t sh = h, sw = w;
                    if (q > 0 && quarter == 0) sw = w - 1;
                    if (q > 0 && quarter == 1) sw = w + 1;
                    if (q > 0 && quarter == 2) sh = h - 1;
                    if (q > 0 && quarter == 3) sh = h + 1;
                    if (sh < 0 || sh >= gh || sw < 0 || sw >= gw) continue;  // zero border
                    oa[b][h * gw + w][c] = xa[b][sh * gw + sw][c];
                }
    return out.to(x_in.scalar_type());
}

}  // namespace aviary::audio
