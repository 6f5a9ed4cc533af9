// The one WKV dispatch (wkv.h): CUDA tensors go to the CUDA op when it is compiled in; CPU tensors to the fused
// loops of wkv_cpu.cpp; CUDA tensors without the CUDA op use the reference recurrence for short sequences and the
// chunked matrix form for longer ones. Under bf16 training (CPU autocast, trainer.cpp) the WKV stays fp32: its
// inputs are widened and autocast is off inside, so the recurrence, the state and every sum run in fp32.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "aviary/core/error.h"
#include "aviary/core/wkv.h"

namespace aviary {

const char* wkv_impl_name(WkvImpl impl) {
    switch (impl) {
        case WkvImpl::Auto:
            return "auto";
        case WkvImpl::Reference:
            return "reference";
        case WkvImpl::Chunked:
            return "chunked";
        case WkvImpl::Cuda:
            return "cuda";
        case WkvImpl::Cpu:
            return "cpu";
    }
    return "?";
}

#ifndef AVIARY_HAVE_CUDA_OP
bool wkv_cuda_available() {
    return false;
}
std::pair<at::Tensor, at::Tensor> wkv_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&) {
    AVIARY_FAIL(
        "the CUDA WKV path is not available: this build has no CUDA LibTorch (rebuild with AVIARY_CUDA=ON "
        "against a CUDA-enabled LibTorch)");
}
#endif

namespace {

std::pair<at::Tensor, at::Tensor> wkv_dispatch(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                               const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state,
                                               WkvImpl impl, int64_t chunk) {
    if (impl == WkvImpl::Auto) {
        if (r.is_cuda() && wkv_cuda_available())
            impl = WkvImpl::Cuda;
        else if (r.device().is_cpu())
            impl = WkvImpl::Cpu;
        else
            impl = r.size(1) < 2 * chunk ? WkvImpl::Reference : WkvImpl::Chunked;
    }
    switch (impl) {
        case WkvImpl::Reference:
            return wkv_reference(r, k, v, log_w, u, state);
        case WkvImpl::Chunked:
            return wkv_chunked(r, k, v, log_w, u, state, chunk);
        case WkvImpl::Cpu:
            return wkv_cpu(r, k, v, log_w, u, state);
        case WkvImpl::Cuda:
            AVIARY_CHECK(r.is_cuda(), "wkv: the CUDA path needs CUDA tensors");
            return wkv_cuda(r, k, v, log_w, u, state);
        default:
            break;
    }
    AVIARY_FAIL("wkv: unknown implementation");
}

}  // namespace

std::pair<at::Tensor, at::Tensor> wkv(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state,
                                      WkvImpl impl, int64_t chunk) {
    if (at::autocast::is_cpu_enabled() && r.device().is_cpu()) {
        // bf16 autocast: r, k, v come from bf16 products; widen them (the casts are differentiable, so their
        // gradients return in bf16) and run the recurrence — including the chunked form's matmuls — in fp32.
        c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
        auto f32 = [](const at::Tensor& t) { return t.defined() ? t.to(at::kFloat) : t; };
        return wkv_dispatch(f32(r), f32(k), f32(v), f32(log_w), f32(u), f32(state), impl, chunk);
    }
    return wkv_dispatch(r, k, v, log_w, u, state, impl, chunk);
}

}  // namespace aviary
