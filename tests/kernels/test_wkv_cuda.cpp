// GPU tests of the CUDA WKV kernels (kernels/src/wkv_*.cu) and their autograd op (core/src/wkv_cuda_op.cpp)
// against the CPU per-timestep oracle aviary::wkv_reference (spec §2.5.1): y, the final state and every gradient,
// with a non-zero initial state and a non-zero upstream gradient of the final state. Tests named *_CUDA skip
// without a GPU. The direct launcher tests (NaN-poisoned outputs, decode) need AVIARY_HAVE_CUDA_OP.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/decoder.h"
#include "aviary/core/model.h"
#include "aviary/core/wkv.h"

#if defined(AVIARY_HAVE_CUDA_OP)
#include <ATen/cuda/CUDAContext.h>

#include <stdexcept>

#include "aviary/kernels/wkv.cuh"
#endif

namespace {

constexpr double kTolFp32 = 1e-5;  // see RelativeError below for what it measures
constexpr double kTolBf16 = 1e-2;  // bf16 gradients are rounded to bf16 (8 bits) on return

struct WkvInputs {
    at::Tensor r, k, v;  // (B, T, H, N) in the tested dtype
    at::Tensor lw;       // (B, T, H, N) fp32 log decay, or (1, 1, H, N) expanded when broadcast
    at::Tensor u;        // (H, N) fp32
    at::Tensor s0;       // (B, H, N, N) fp32
    at::Tensor gy;       // (B, T, H, N) fp32 upstream gradient of y
    at::Tensor gs;       // (B, H, N, N) fp32 upstream gradient of the final state
};

// Fresh seeded inputs: log decays −exp(randn·0.5 − 0.5) give decays from ≈0.05 to ≈0.97.
WkvInputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t N, at::ScalarType dtype, uint64_t seed,
                      bool broadcast_lw = false) {
    torch::manual_seed(seed);
    WkvInputs in;
    in.r = (torch::randn({B, T, H, N}) * 0.5).to(dtype);
    in.k = (torch::randn({B, T, H, N}) * 0.5).to(dtype);
    in.v = torch::randn({B, T, H, N}).to(dtype);
    in.lw = broadcast_lw ? -torch::exp(torch::randn({1, 1, H, N}) * 0.5 - 0.5)
                         : -torch::exp(torch::randn({B, T, H, N}) * 0.5 - 0.5);
    in.u = torch::randn({H, N}) * 0.5;
    in.s0 = torch::randn({B, H, N, N}) * 0.3;
    in.gy = torch::randn({B, T, H, N});
    in.gs = torch::randn({B, H, N, N});
    return in;
}

// max|a − b| / max|b| over all elements, with the worst element described in `worst`.
double relative_error(const at::Tensor& got, const at::Tensor& want, std::string* worst) {
    const at::Tensor a = got.detach().to(torch::kCPU, torch::kDouble).contiguous();
    const at::Tensor b = want.detach().to(torch::kCPU, torch::kDouble).contiguous();
    if (a.sizes() != b.sizes()) {
        std::ostringstream os;
        os << "shape " << a.sizes() << " vs expected " << b.sizes();
        *worst = os.str();
        return INFINITY;
    }
    const at::Tensor diff = (a - b).abs();
    if (!torch::isfinite(a).all().item<bool>()) {
        const int64_t at_ = (~torch::isfinite(a)).flatten().nonzero()[0].item<int64_t>();
        *worst = "non-finite value at flat index " + std::to_string(at_) + " (poisoned output not written?)";
        return INFINITY;
    }
    const int64_t idx = diff.flatten().argmax().item<int64_t>();
    const double scale = b.abs().max().item<double>();
    std::ostringstream os;
    os << "worst at flat index " << idx << ": got " << a.flatten()[idx].item<double>() << ", expected "
       << b.flatten()[idx].item<double>() << " (max|expected| = " << scale << ")";
    *worst = os.str();
    return diff.max().item<double>() / (scale > 0 ? scale : 1.0);
}

#define EXPECT_CLOSE(name, got, want, tol)                                                 \
    do {                                                                                   \
        std::string worst_;                                                                \
        const double err_ = relative_error((got), (want), &worst_);                        \
        EXPECT_LT(err_, (tol)) << (name) << ": relative error " << err_ << "; " << worst_; \
    } while (0)

struct WkvResult {
    at::Tensor y, s;                      // forward
    at::Tensor gr, gk, gv, glw, gu, gs0;  // gradients of Σ y·gy + Σ s·gs
};

// Runs `fn` (wkv_reference or wkv_cuda) on leaf copies of the inputs on `device` and back-propagates.
template <typename Fn>
WkvResult run_with_grad(Fn fn, const WkvInputs& in, const torch::Device& device) {
    auto leaf = [&](const at::Tensor& t) { return t.detach().to(device).clone().requires_grad_(true); };
    at::Tensor r = leaf(in.r), k = leaf(in.k), v = leaf(in.v), lw = leaf(in.lw), u = leaf(in.u), s0 = leaf(in.s0);
    const at::Tensor lw_full = lw.expand({in.r.size(0), in.r.size(1), in.r.size(2), in.r.size(3)});
    auto [y, s] = fn(r, k, v, lw_full, u, s0);
    const at::Tensor loss = (y * in.gy.to(device)).sum() + (s * in.gs.to(device)).sum();
    loss.backward();
    return {y.detach().cpu(), s.detach().cpu(), r.grad().cpu(), k.grad().cpu(),
            v.grad().cpu(),   lw.grad().cpu(),  u.grad().cpu(), s0.grad().cpu()};
}

void expect_all_close(const WkvResult& got, const WkvResult& want, double tol, const std::string& label) {
    EXPECT_CLOSE(label + " y", got.y, want.y, tol);
    EXPECT_CLOSE(label + " final state", got.s, want.s, tol);
    EXPECT_CLOSE(label + " grad r", got.gr, want.gr, tol);
    EXPECT_CLOSE(label + " grad k", got.gk, want.gk, tol);
    EXPECT_CLOSE(label + " grad v", got.gv, want.gv, tol);
    EXPECT_CLOSE(label + " grad log_w", got.glw, want.glw, tol);
    EXPECT_CLOSE(label + " grad u", got.gu, want.gu, tol);
    EXPECT_CLOSE(label + " grad state", got.gs0, want.gs0, tol);
}

#define SKIP_WITHOUT_CUDA()                                                \
    do {                                                                   \
        if (!torch::cuda::is_available() || !aviary::wkv_cuda_available()) \
            GTEST_SKIP() << "no CUDA device (or LibTorch without CUDA)";   \
    } while (0)

struct Case {
    int64_t B, T, H, N;
};

std::string case_label(const Case& c, at::ScalarType dtype) {
    std::ostringstream os;
    os << "B=" << c.B << " T=" << c.T << " H=" << c.H << " N=" << c.N << " " << c10::toString(dtype);
    return os.str();
}

std::vector<Case> sweep_cases() {
    std::vector<Case> cases;
    for (int64_t T : {1, 2, 7, 64, 100, 333}) {
        cases.push_back({1, T, 1, 64});
        cases.push_back({3, T, 4, 64});
    }
    cases.push_back({1, 7, 4, 64});
    cases.push_back({3, 7, 1, 64});
    cases.push_back({2, 50, 2, 32});
    cases.push_back({2, 50, 2, 128});
    return cases;
}

void check_op_against_reference(at::ScalarType dtype, double tol) {
    const torch::Device cuda(torch::kCUDA);
    uint64_t seed = 1000;
    for (const Case& c : sweep_cases()) {
        const WkvInputs in = make_inputs(c.B, c.T, c.H, c.N, dtype, ++seed);
        const WkvResult want = run_with_grad(aviary::wkv_reference, in, torch::kCPU);
        // Poison the caching allocator: the op's outputs are likely carved from this NaN block.
        {
            at::Tensor poison = torch::full({c.B * c.T * c.H * c.N * 16 + 4 * c.B * c.H * c.N * c.N}, NAN,
                                            torch::dtype(torch::kFloat).device(cuda));
        }
        const WkvResult got = run_with_grad(aviary::wkv_cuda, in, cuda);
        expect_all_close(got, want, tol, case_label(c, dtype));
    }
}

}  // namespace

TEST(WkvCudaOp, Fp32MatchesReference_CUDA) {
    SKIP_WITHOUT_CUDA();
    check_op_against_reference(torch::kFloat, kTolFp32);
}

TEST(WkvCudaOp, Bf16MatchesReference_CUDA) {
    SKIP_WITHOUT_CUDA();
    check_op_against_reference(torch::kBFloat16, kTolBf16);
}

// Eagle (v5) passes one decay per head, (1, 1, H, N) expanded over B and T: the gradient must be summed back.
TEST(WkvCudaOp, BroadcastLogDecayGradient_CUDA) {
    SKIP_WITHOUT_CUDA();
    const WkvInputs in = make_inputs(3, 40, 2, 64, torch::kFloat, 7, /*broadcast_lw=*/true);
    const WkvResult want = run_with_grad(aviary::wkv_reference, in, torch::kCPU);
    const WkvResult got = run_with_grad(aviary::wkv_cuda, in, torch::Device(torch::kCUDA));
    ASSERT_EQ(got.glw.sizes(), in.lw.sizes());
    expect_all_close(got, want, kTolFp32, "broadcast log_w");
}

// Without an initial state and without a final-state gradient (the training setting of the official kernels).
TEST(WkvCudaOp, NoStateNoStateGradient_CUDA) {
    SKIP_WITHOUT_CUDA();
    const WkvInputs in = make_inputs(2, 65, 2, 64, torch::kFloat, 11);
    auto run = [&](auto fn, const torch::Device& dev) {
        auto leaf = [&](const at::Tensor& t) { return t.detach().to(dev).clone().requires_grad_(true); };
        at::Tensor r = leaf(in.r), k = leaf(in.k), v = leaf(in.v), lw = leaf(in.lw), u = leaf(in.u);
        auto [y, s] = fn(r, k, v, lw, u, at::Tensor());
        (y * in.gy.to(dev)).sum().backward();
        return std::vector<at::Tensor>{y.detach().cpu(), s.detach().cpu(), r.grad().cpu(), k.grad().cpu(),
                                       v.grad().cpu(),   lw.grad().cpu(),  u.grad().cpu()};
    };
    const auto want = run(aviary::wkv_reference, torch::kCPU);
    const auto got = run(aviary::wkv_cuda, torch::Device(torch::kCUDA));
    const char* names[] = {"y", "final state", "grad r", "grad k", "grad v", "grad log_w", "grad u"};
    for (size_t i = 0; i < want.size(); ++i)
        EXPECT_CLOSE(std::string("no state ") + names[i], got[i], want[i], kTolFp32);
}

#if defined(AVIARY_HAVE_CUDA_OP)

namespace {

template <typename In>
const In* ptr_as(const at::Tensor& t) {
    return static_cast<const In*>(t.data_ptr());
}

at::Tensor nan_like(const at::Tensor& t) {
    return torch::full_like(t, NAN, torch::dtype(torch::kFloat));
}

// Calls the launchers directly with every output NaN-filled first, and compares with the reference.
template <typename In>
void check_launchers(at::ScalarType dtype, double tol) {
    const auto cuda = torch::Device(torch::kCUDA);
    const auto stream = at::cuda::getCurrentCUDAStream().stream();
    uint64_t seed = 5000;
    for (const Case& c : {Case{1, 1, 1, 64}, Case{3, 2, 4, 64}, Case{3, 100, 4, 64}, Case{2, 333, 1, 64},
                          Case{2, 9, 3, 32}, Case{2, 9, 3, 128}}) {
        const WkvInputs in = make_inputs(c.B, c.T, c.H, c.N, dtype, ++seed);
        const WkvResult want = run_with_grad(aviary::wkv_reference, in, torch::kCPU);
        const at::Tensor r = in.r.to(cuda), k = in.k.to(cuda), v = in.v.to(cuda), lw = in.lw.to(cuda);
        const at::Tensor u = in.u.to(cuda), s0 = in.s0.to(cuda), gy = in.gy.to(cuda), gs = in.gs.to(cuda);
        at::Tensor y = nan_like(gy), s = nan_like(s0);
        const int B = c.B, T = c.T, H = c.H, N = c.N;
        ASSERT_EQ(aviary::kernels::wkv_forward<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                                   u.data_ptr<float>(), s0.data_ptr<float>(), y.data_ptr<float>(),
                                                   s.data_ptr<float>(), B, T, H, N, stream),
                  cudaSuccess);
        at::Tensor gr = nan_like(gy), gk = nan_like(gy), gv = nan_like(gy), glw = nan_like(gy);
        at::Tensor gu = torch::full({c.B, c.H, c.N}, NAN, torch::dtype(torch::kFloat).device(cuda));
        at::Tensor gs0 = nan_like(s0);
        ASSERT_EQ(aviary::kernels::wkv_backward<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                                    u.data_ptr<float>(), s0.data_ptr<float>(), s.data_ptr<float>(),
                                                    gy.data_ptr<float>(), gs.data_ptr<float>(), gr.data_ptr<float>(),
                                                    gk.data_ptr<float>(), gv.data_ptr<float>(), glw.data_ptr<float>(),
                                                    gu.data_ptr<float>(), gs0.data_ptr<float>(), B, T, H, N, stream),
                  cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        // The launchers return fp32 gradients; the reference's are in the input dtype (bf16 rounding ≤ tol).
        const WkvResult got{y.cpu(), s.cpu(), gr.cpu(), gk.cpu(), gv.cpu(), glw.cpu(), gu.sum(0).cpu(), gs0.cpu()};
        expect_all_close(got, want, tol, "launchers " + case_label(c, dtype));
    }
}

template <typename In>
void check_decode(at::ScalarType dtype, double tol) {
    const auto cuda = torch::Device(torch::kCUDA);
    const auto stream = at::cuda::getCurrentCUDAStream().stream();
    for (const int N : {32, 64, 128}) {
        const int B = 8, H = 4;
        const WkvInputs in = make_inputs(B, 1, H, N, dtype, 900 + N);
        at::Tensor y_want, s_want;
        {
            torch::NoGradGuard no_grad;
            std::tie(y_want, s_want) = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, in.s0);
        }
        // (B, 1, H, N) and (B, H, N) share their memory layout.
        const at::Tensor r = in.r.to(cuda), k = in.k.to(cuda), v = in.v.to(cuda), lw = in.lw.to(cuda);
        const at::Tensor u = in.u.to(cuda);
        at::Tensor state = in.s0.to(cuda).clone();
        at::Tensor y = torch::full({B, H, N}, NAN, torch::dtype(torch::kFloat).device(cuda));
        ASSERT_EQ(aviary::kernels::wkv_decode<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                                  u.data_ptr<float>(), state.data_ptr<float>(), y.data_ptr<float>(), B,
                                                  H, N, stream),
                  cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        const std::string label = "decode N=" + std::to_string(N) + " " + c10::toString(dtype);
        EXPECT_CLOSE(label + " y", y.cpu(), y_want.reshape({B, H, N}), tol);
        EXPECT_CLOSE(label + " state", state.cpu(), s_want, tol);
    }
}

}  // namespace

TEST(WkvCudaLaunchers, Fp32PoisonedOutputs_CUDA) {
    SKIP_WITHOUT_CUDA();
    check_launchers<float>(torch::kFloat, kTolFp32);
}

TEST(WkvCudaLaunchers, Bf16PoisonedOutputs_CUDA) {
    SKIP_WITHOUT_CUDA();
    check_launchers<__nv_bfloat16>(torch::kBFloat16, kTolBf16);
}

TEST(WkvCudaLaunchers, DecodeMatchesReference_CUDA) {
    SKIP_WITHOUT_CUDA();
    check_decode<float>(torch::kFloat, kTolFp32);
    check_decode<__nv_bfloat16>(torch::kBFloat16, kTolFp32);  // same bf16 inputs, fp32 outputs on both sides
}

// Precondition checks run before any CUDA call, so this needs no GPU.
TEST(WkvCudaLaunchers, RejectsBadArguments) {
    float dummy[4] = {};
    EXPECT_THROW(aviary::kernels::wkv_forward<float>(dummy, dummy, dummy, dummy, dummy, nullptr, dummy, dummy, 1, 1, 1,
                                                     48, nullptr),
                 std::invalid_argument);
    EXPECT_THROW(aviary::kernels::wkv_forward<float>(dummy, dummy, dummy, dummy, dummy, nullptr, dummy, dummy, 1, 0, 1,
                                                     64, nullptr),
                 std::invalid_argument);
    EXPECT_THROW(aviary::kernels::wkv_forward<float>(nullptr, dummy, dummy, dummy, dummy, nullptr, dummy, dummy, 1, 1,
                                                     1, 64, nullptr),
                 std::invalid_argument);
    EXPECT_THROW(aviary::kernels::wkv_backward<float>(dummy, dummy, dummy, dummy, dummy, nullptr, nullptr, dummy, dummy,
                                                      dummy, dummy, dummy, dummy, dummy, nullptr, 1, 1, 1, 64, nullptr),
                 std::invalid_argument);  // g_sout without s_fin
    EXPECT_THROW(aviary::kernels::wkv_decode<float>(dummy, dummy, dummy, dummy, dummy, dummy, dummy, 0, 1, 64, nullptr),
                 std::invalid_argument);
}

#endif  // AVIARY_HAVE_CUDA_OP

// ---- The whole model on the GPU (core/src/model.cpp, decode_cuda_graph.cpp) against the CPU and the golden
// fixtures of tests/fixtures/golden (official "cpu fp32" logits, tools/make_golden.py).
namespace {

std::string golden_path(const std::string& file) {
    return std::string(AVIARY_FIXTURES_DIR) + "/golden/" + file;
}

at::Tensor golden_tensor(const aviary::TensorList& list, const std::string& name) {
    const at::Tensor* t = aviary::find_tensor(list, name);
    if (t == nullptr) ADD_FAILURE() << "fixture lacks " << name;
    return t ? *t : at::Tensor();
}

// Sequence-mode (all positions) and RNN-mode (one step per token) logits (T, V) of `model` for `tokens` (T).
std::pair<at::Tensor, at::Tensor> model_logits(aviary::Model& model, const at::Tensor& tokens) {
    auto state = model.new_state(1);
    const at::Tensor seq = model.forward(tokens.unsqueeze(0), state, /*all_logits=*/true).squeeze(0).cpu();
    auto rnn_state = model.new_state(1);
    std::vector<at::Tensor> rows;
    for (int64_t t = 0; t < tokens.size(0); ++t) rows.push_back(model.step(tokens.narrow(0, t, 1), rnn_state).cpu());
    return {seq, at::cat(rows, 0)};
}

}  // namespace

// Full-model logits on the GPU vs the CPU model and vs the official logits, fp32 and bf16 weights, sequence and
// RNN mode (the RNN step on the GPU runs the one-step decode kernel).
TEST(WkvCudaModel, ModelGpuVsCpu_CUDA) {
    SKIP_WITHOUT_CUDA();
    for (const std::string name : {"v5_fp32", "v6_fp32"}) {
        const aviary::TensorList expected = aviary::read_safetensors(golden_path(name + ".expected.safetensors"));
        const at::Tensor tokens = golden_tensor(expected, "tokens").to(at::kLong);
        const at::Tensor want_seq = golden_tensor(expected, "logits_seq");
        const at::Tensor want_rnn = golden_tensor(expected, "logits_rnn");
        for (const std::string dtype : {"fp32", "bf16"}) {
            const double tol = dtype == "fp32" ? 1e-4 : 3e-2;
            aviary::ModelOptions cpu_opt, gpu_opt;
            cpu_opt.dtype = gpu_opt.dtype = dtype;
            gpu_opt.device = "cuda";
            aviary::Model cpu = aviary::Model::load(golden_path(name + ".pth"), cpu_opt);
            aviary::Model gpu = aviary::Model::load(golden_path(name + ".pth"), gpu_opt);
            const auto [cpu_seq, cpu_rnn] = model_logits(cpu, tokens);
            const auto [gpu_seq, gpu_rnn] = model_logits(gpu, tokens);
            const std::string label = name + " " + dtype;
            EXPECT_CLOSE(label + " sequence GPU vs CPU", gpu_seq, cpu_seq, tol);
            EXPECT_CLOSE(label + " RNN GPU vs CPU", gpu_rnn, cpu_rnn, tol);
            EXPECT_CLOSE(label + " sequence GPU vs official", gpu_seq, want_seq, tol);
            EXPECT_CLOSE(label + " RNN GPU vs official", gpu_rnn, want_rnn, tol);
        }
    }
}

// Decoder: the CUDA-graph step equals plain Model::step (same kernels, so to rounding), for a batch of three
// sequences with different tokens, and each row equals that sequence decoded alone.
TEST(WkvCudaModel, DecoderGraphMatchesStep_CUDA) {
    SKIP_WITHOUT_CUDA();
    for (const std::string name : {"v5_fp32", "v6_fp32"}) {
        for (const std::string dtype : {"fp32", "bf16"}) {
            aviary::ModelOptions opt;
            opt.device = "cuda";
            opt.dtype = dtype;
            aviary::Model model = aviary::Model::load(golden_path(name + ".pth"), opt);
            const int64_t B = 3, steps = 9, V = model.config().vocab_size;
            torch::manual_seed(5);
            const at::Tensor tokens = torch::randint(0, V, {steps, B}, torch::kLong);  // (steps, B)
            aviary::Decoder graph(model, B), plain(model, B, /*use_graph=*/false);
            ASSERT_TRUE(graph.uses_graph());
            ASSERT_FALSE(plain.uses_graph());
            std::vector<std::unique_ptr<aviary::Decoder>> owned;
            for (int64_t b = 0; b < B; ++b) owned.push_back(std::make_unique<aviary::Decoder>(model, 1));
            const std::string label = name + " " + dtype;
            for (int64_t t = 0; t < steps; ++t) {
                // Host tokens for even steps, device tokens for odd ones (both inputs of the static buffer).
                const at::Tensor tok = t % 2 ? tokens[t].cuda() : tokens[t];
                const at::Tensor got = graph.step(tok).cpu();
                const at::Tensor want = plain.step(tok).cpu();
                EXPECT_CLOSE(label + " graph vs plain, step " + std::to_string(t), got, want, 1e-5);
                for (int64_t b = 0; b < B; ++b) {
                    const at::Tensor alone = owned[b]->step(tokens[t].narrow(0, b, 1)).cpu();
                    EXPECT_CLOSE(label + " batched row " + std::to_string(b) + " vs alone, step " + std::to_string(t),
                                 got.narrow(0, b, 1), alone, dtype == "fp32" ? 1e-5 : 1e-2);
                }
            }
            for (int l = 0; l < model.config().n_layer; ++l)
                EXPECT_CLOSE(label + " graph state wkv " + std::to_string(l), graph.state().wkv[l],
                             plain.state().wkv[l], 1e-5);
            // load_state rewinds the fixed buffers: replaying from a fresh state gives the first logits again.
            graph.load_state(model.new_state(B));
            plain.load_state(model.new_state(B));
            EXPECT_CLOSE(label + " after load_state", graph.step(tokens[0]).cpu(), plain.step(tokens[0]).cpu(), 1e-5);
        }
    }
}
