// aviary::wkv_cuda: the CUDA WKV kernels (kernels/include/aviary/kernels/wkv.cuh) wrapped as a LibTorch autograd
// Function, the counterpart of the official WKV_5/WKV_6 Python wrappers (spec §4.2–4.3). Forward saves the inputs
// and the final state; backward recomputes states in the kernels. Compiled only with CUDA LibTorch
// (AVIARY_HAVE_CUDA_OP, core/CMakeLists.txt); wkv_dispatch.cpp defines CPU stubs otherwise.
#include <ATen/ExpandUtils.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cuda_bf16.h>

#include <string>
#include <type_traits>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/wkv.h"
#include "aviary/kernels/wkv.cuh"

namespace aviary {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void check_cuda(cudaError_t err, const char* what) {
    AVIARY_CHECK(err == cudaSuccess, "wkv_cuda: ", what, " failed: ", cudaGetErrorString(err));
}

// Calls the launcher for the element type of r/k/v (bf16 or fp32; see WkvCudaFunction::forward).
template <typename F>
void dispatch_input_type(const at::Tensor& x, F&& f) {
    if (x.scalar_type() == at::kBFloat16) {
        f(static_cast<const __nv_bfloat16*>(nullptr));
    } else {
        f(static_cast<const float*>(nullptr));
    }
}

template <typename In>
const In* data_as(const at::Tensor& t) {
    return static_cast<const In*>(t.data_ptr());
}

const float* data_or_null(const at::Tensor& t) {
    return t.defined() ? t.data_ptr<float>() : nullptr;
}

class WkvCudaFunction : public torch::autograd::Function<WkvCudaFunction> {
public:
    static tensor_list forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
        AVIARY_CHECK(r.dim() == 4, "wkv_cuda: r must be (B, T, H, N), got ", r.sizes());
        AVIARY_CHECK(k.sizes() == r.sizes() && v.sizes() == r.sizes(), "wkv_cuda: k and v must match r ", r.sizes(),
                     ", got ", k.sizes(), " and ", v.sizes());
        const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
        AVIARY_CHECK(N == 32 || N == 64 || N == 128, "wkv_cuda: head size must be 32, 64 or 128, got ", N);
        AVIARY_CHECK(r.is_cuda() && k.device() == r.device() && v.device() == r.device() &&
                         log_w.device() == r.device() && u.device() == r.device(),
                     "wkv_cuda: r, k, v, log_w, u must be on one CUDA device");
        AVIARY_CHECK(u.numel() == H * N, "wkv_cuda: u must be (H, N) = (", H, ", ", N, "), got ", u.sizes());
        c10::cuda::CUDAGuard guard(r.device());

        // bf16 inputs stay bf16 (the kernels widen them); every other dtype computes from fp32 copies.
        const bool bf16 =
            r.scalar_type() == at::kBFloat16 && k.scalar_type() == at::kBFloat16 && v.scalar_type() == at::kBFloat16;
        const auto in_type = bf16 ? at::kBFloat16 : at::kFloat;
        const at::Tensor rc = r.to(in_type).contiguous();  // (B, T, H, N)
        const at::Tensor kc = k.to(in_type).contiguous();
        const at::Tensor vc = v.to(in_type).contiguous();
        // log_w may be broadcast over B and T (v5 passes (1, 1, H, N) or (H, N)); materialise it.
        const at::Tensor lwc = log_w.to(at::kFloat).expand({B, T, H, N}).contiguous();  // (B, T, H, N)
        const at::Tensor uc = u.to(at::kFloat).reshape({H, N}).contiguous();            // (H, N)
        at::Tensor s0c;  // (B, H, N, N), or undefined when state is the empty placeholder (no initial state)
        if (state.numel() > 0) {
            AVIARY_CHECK(state.device() == r.device(), "wkv_cuda: state must be on the device of r");  // (B, H, N, N)
            AVIARY_CHECK(state.numel() == B * H * N * N, "wkv_cuda: state must be (B, H, N, N) = (", B, ", ", H, ", ",
                         N, ", ", N, "), got ", state.sizes());
            s0c = state.to(at::kFloat).reshape({B, H, N, N}).contiguous();
        }

        const auto f32 = r.options().dtype(at::kFloat);
        at::Tensor y = at::empty({B, T, H, N}, f32);
        at::Tensor s_out = at::empty({B, H, N, N}, f32);
        const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
        dispatch_input_type(rc, [&](auto tag) {
            using In = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
            check_cuda(kernels::wkv_forward<In>(data_as<In>(rc), data_as<In>(kc), data_as<In>(vc),
                                                lwc.data_ptr<float>(), uc.data_ptr<float>(), data_or_null(s0c),
                                                y.data_ptr<float>(), s_out.data_ptr<float>(), static_cast<int>(B),
                                                static_cast<int>(T), static_cast<int>(H), static_cast<int>(N), stream),
                       "wkv_forward launch");
        });

        ctx->save_for_backward({rc, kc, vc, lwc, uc, s0c, s_out});
        ctx->saved_data["r_dtype"] = static_cast<int64_t>(r.scalar_type());
        ctx->saved_data["k_dtype"] = static_cast<int64_t>(k.scalar_type());
        ctx->saved_data["v_dtype"] = static_cast<int64_t>(v.scalar_type());
        ctx->saved_data["lw_dtype"] = static_cast<int64_t>(log_w.scalar_type());
        ctx->saved_data["lw_shape"] = log_w.sizes().vec();
        ctx->saved_data["u_dtype"] = static_cast<int64_t>(u.scalar_type());
        ctx->saved_data["u_shape"] = u.sizes().vec();
        ctx->saved_data["s_dtype"] = static_cast<int64_t>(state.scalar_type());
        ctx->saved_data["s_shape"] = state.sizes().vec();
        ctx->set_materialize_grads(false);
        return {y, s_out};
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grad_out) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &rc = saved[0], &kc = saved[1], &vc = saved[2], &lwc = saved[3], &uc = saved[4];
        const at::Tensor &s0c = saved[5], &s_out = saved[6];
        const int64_t B = rc.size(0), T = rc.size(1), H = rc.size(2), N = rc.size(3);
        c10::cuda::CUDAGuard guard(rc.device());

        const auto f32 = rc.options().dtype(at::kFloat);
        // Undefined upstream gradients mean zeros: gy is materialised, g_sout is passed as nullptr.
        const at::Tensor gy = grad_out[0].defined() ? grad_out[0].to(at::kFloat).contiguous()
                                                    : at::zeros({B, T, H, N}, f32);  // (B, T, H, N)
        const at::Tensor g_sout = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous()
                                                        : at::Tensor();  // (B, H, N, N) or undefined
        at::Tensor gr = at::empty({B, T, H, N}, f32), gk = at::empty_like(gr), gv = at::empty_like(gr);
        at::Tensor glw = at::empty_like(gr);
        at::Tensor gu = at::empty({B, H, N}, f32);  // per batch item
        const bool want_gs0 = s0c.defined() && ctx->needs_input_grad(5);
        at::Tensor gs0 = want_gs0 ? at::empty({B, H, N, N}, f32) : at::Tensor();
        const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
        dispatch_input_type(rc, [&](auto tag) {
            using In = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
            check_cuda(kernels::wkv_backward<In>(
                           data_as<In>(rc), data_as<In>(kc), data_as<In>(vc), lwc.data_ptr<float>(),
                           uc.data_ptr<float>(), data_or_null(s0c), s_out.data_ptr<float>(), gy.data_ptr<float>(),
                           data_or_null(g_sout), gr.data_ptr<float>(), gk.data_ptr<float>(), gv.data_ptr<float>(),
                           glw.data_ptr<float>(), gu.data_ptr<float>(), want_gs0 ? gs0.data_ptr<float>() : nullptr,
                           static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), static_cast<int>(N), stream),
                       "wkv_backward launch");
        });

        auto dtype_of = [&](const char* key) { return static_cast<at::ScalarType>(ctx->saved_data[key].toInt()); };
        const auto lw_shape = ctx->saved_data["lw_shape"].toIntVector();
        const auto u_shape = ctx->saved_data["u_shape"].toIntVector();
        // log_w was expanded in forward: sum the gradient back to its original (broadcast) shape.
        at::Tensor glw_in = at::sum_to(glw, lw_shape).to(dtype_of("lw_dtype"));
        at::Tensor gu_in = gu.sum(0).reshape(u_shape).to(dtype_of("u_dtype"));
        at::Tensor gs0_in;
        if (want_gs0) gs0_in = gs0.reshape(ctx->saved_data["s_shape"].toIntVector()).to(dtype_of("s_dtype"));
        return {
            gr.to(dtype_of("r_dtype")), gk.to(dtype_of("k_dtype")), gv.to(dtype_of("v_dtype")), glw_in, gu_in, gs0_in};
    }
};

// One RNN step (T = 1) without autograd through the batched decode kernel (kernels/src/wkv_decode.cu): r, k, v, log_w
// (B, 1, H, N), u (H, N), state (B, H, N, N) or empty. The kernel updates the state in place, so it runs on a copy:
// the caller's state stays a valid snapshot. Returns (y (B, 1, H, N) fp32, new state (B, H, N, N) fp32).
std::pair<at::Tensor, at::Tensor> wkv_cuda_decode(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                                  const at::Tensor& log_w, const at::Tensor& u,
                                                  const at::Tensor& state) {
    AVIARY_CHECK(r.dim() == 4 && r.size(1) == 1, "wkv_cuda_decode: r must be (B, 1, H, N), got ", r.sizes());
    AVIARY_CHECK(k.sizes() == r.sizes() && v.sizes() == r.sizes(), "wkv_cuda_decode: k and v must match r ", r.sizes());
    const int64_t B = r.size(0), H = r.size(2), N = r.size(3);
    AVIARY_CHECK(N == 32 || N == 64 || N == 128, "wkv_cuda_decode: head size must be 32, 64 or 128, got ", N);
    AVIARY_CHECK(u.numel() == H * N, "wkv_cuda_decode: u must be (H, N) = (", H, ", ", N, "), got ", u.sizes());
    c10::cuda::CUDAGuard guard(r.device());
    const bool bf16 =
        r.scalar_type() == at::kBFloat16 && k.scalar_type() == at::kBFloat16 && v.scalar_type() == at::kBFloat16;
    const auto in_type = bf16 ? at::kBFloat16 : at::kFloat;
    const at::Tensor rc = r.to(in_type).reshape({B, H, N}).contiguous();  // (B, H, N)
    const at::Tensor kc = k.to(in_type).reshape({B, H, N}).contiguous();
    const at::Tensor vc = v.to(in_type).reshape({B, H, N}).contiguous();
    const at::Tensor lwc = log_w.to(at::kFloat).expand({B, 1, H, N}).reshape({B, H, N}).contiguous();  // (B, H, N)
    const at::Tensor uc = u.to(at::kFloat).reshape({H, N}).contiguous();                               // (H, N)
    const auto f32 = r.options().dtype(at::kFloat);
    at::Tensor s;  // (B, H, N, N), updated in place by the kernel
    if (state.numel() > 0) {
        AVIARY_CHECK(state.numel() == B * H * N * N, "wkv_cuda_decode: state must be (B, H, N, N) = (", B, ", ", H,
                     ", ", N, ", ", N, "), got ", state.sizes());
        s = state.to(at::kFloat).reshape({B, H, N, N}).clone(at::MemoryFormat::Contiguous);
    } else {
        s = at::zeros({B, H, N, N}, f32);
    }
    at::Tensor y = at::empty({B, 1, H, N}, f32);  // (B, 1, H, N)
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    dispatch_input_type(rc, [&](auto tag) {
        using In = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        check_cuda(kernels::wkv_decode<In>(data_as<In>(rc), data_as<In>(kc), data_as<In>(vc), lwc.data_ptr<float>(),
                                           uc.data_ptr<float>(), s.data_ptr<float>(), y.data_ptr<float>(),
                                           static_cast<int>(B), static_cast<int>(H), static_cast<int>(N), stream),
                   "wkv_decode launch");
    });
    return {y, s};
}

}  // namespace

bool wkv_cuda_available() {
    return torch::cuda::is_available();
}

std::pair<at::Tensor, at::Tensor> wkv_cuda(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
    AVIARY_CHECK(wkv_cuda_available(), "wkv_cuda: no CUDA device is available; use WkvImpl::Reference or Chunked");
    // LibTorch 2.x autograd Functions reject undefined inputs: "no initial state" travels as an empty fp32 tensor.
    const at::Tensor state_in = state.defined() ? state : at::empty({0}, r.options().dtype(at::kFloat));
    // The RNN step (T = 1) with no gradient wanted takes the batched one-step decode kernel.
    const bool wants_grad =
        at::GradMode::is_enabled() && (r.requires_grad() || k.requires_grad() || v.requires_grad() ||
                                       log_w.requires_grad() || u.requires_grad() || state_in.requires_grad());
    if (r.dim() == 4 && r.size(1) == 1 && !wants_grad) return wkv_cuda_decode(r, k, v, log_w, u, state_in);
    auto out = WkvCudaFunction::apply(r, k, v, log_w, u, state_in);
    return {out[0], out[1]};
}

}  // namespace aviary
