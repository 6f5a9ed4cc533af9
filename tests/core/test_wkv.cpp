// WKV tests: the reference recurrence against a direct scalar loop in double precision written from the
// formula of spec §2.5.1, and the chunked path against the reference (values and every gradient), with
// a non-zero initial state, T not a multiple of the chunk, and fast and slow decays.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <torch/torch.h>

#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "aviary/core/wkv.h"
#include "aviary/core/wkv4.h"
#include "common/bf16_autocast.h"
#include "common/compare.h"

using aviary::test::rel_close;

namespace {

struct Inputs {
    at::Tensor r, k, v, lw, u, s0;
};

Inputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t N, uint64_t seed, bool grad) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto f = at::TensorOptions().dtype(at::kFloat);
    Inputs in;
    in.r = at::randn({B, T, H, N}, gen, f);
    in.k = at::randn({B, T, H, N}, gen, f) * 0.5;
    in.v = at::randn({B, T, H, N}, gen, f);
    // log decay −exp(w_raw) with w_raw spread over [−6, 1.5]: decays from ~0.01 to ~0.9975
    in.lw = -(at::rand({B, T, H, N}, gen, f) * 7.5 - 6.0).exp();
    in.u = at::randn({H, N}, gen, f) * 0.5;
    in.s0 = at::randn({B, H, N, N}, gen, f) * 0.3;
    if (grad)
        for (auto* t : {&in.r, &in.k, &in.v, &in.lw, &in.u, &in.s0}) t->set_requires_grad(true);
    return in;
}

// Direct transcription of the recurrence with scalar loops in double.
std::pair<at::Tensor, at::Tensor> scalar_wkv(const Inputs& in) {
    auto r = in.r.to(at::kDouble), k = in.k.to(at::kDouble), v = in.v.to(at::kDouble);
    auto w = in.lw.to(at::kDouble).exp(), u = in.u.to(at::kDouble), S = in.s0.to(at::kDouble).clone();
    const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
    auto y = at::zeros({B, T, H, N}, at::kDouble);
    auto ra = r.accessor<double, 4>(), ka = k.accessor<double, 4>(), va = v.accessor<double, 4>();
    auto wa = w.accessor<double, 4>();
    auto ua = u.accessor<double, 2>();
    auto Sa = S.accessor<double, 4>();
    auto ya = y.accessor<double, 4>();
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t i = 0; i < N; ++i) {
                    double acc = 0;
                    for (int64_t j = 0; j < N; ++j)
                        acc += ra[b][t][h][j] * (ua[h][j] * ka[b][t][h][j] * va[b][t][h][i] + Sa[b][h][j][i]);
                    ya[b][t][h][i] = acc;
                }
                for (int64_t j = 0; j < N; ++j)
                    for (int64_t i = 0; i < N; ++i)
                        Sa[b][h][j][i] = wa[b][t][h][j] * Sa[b][h][j][i] + ka[b][t][h][j] * va[b][t][h][i];
            }
    return {y, S};
}

TEST(WkvReference, MatchesScalarRecurrence) {
    for (int64_t T : {1, 3, 17}) {
        auto in = make_inputs(2, T, 2, 8, 100 + T, false);
        auto [y, s] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, in.s0);
        auto [y_ref, s_ref] = scalar_wkv(in);
        EXPECT_TRUE(rel_close(y, y_ref, 1e-5)) << "T=" << T;
        EXPECT_TRUE(rel_close(s, s_ref, 1e-5)) << "T=" << T;
    }
}

TEST(WkvReference, UndefinedStateMeansZeros) {
    auto in = make_inputs(1, 5, 1, 8, 7, false);
    auto [y1, s1] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, at::Tensor());
    auto [y2, s2] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, at::zeros_like(in.s0));
    EXPECT_TRUE(at::equal(y1, y2));
    EXPECT_TRUE(at::equal(s1, s2));
}

TEST(WkvChunked, ValuesMatchReference) {
    for (int64_t T : {1, 7, 32, 45, 100}) {
        for (int64_t chunk : {4, 16, 32}) {
            auto in = make_inputs(2, T, 3, 16, 1000 + T * 7 + chunk, false);
            auto [y, s] = aviary::wkv_chunked(in.r, in.k, in.v, in.lw, in.u, in.s0, chunk);
            auto [y_ref, s_ref] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, in.s0);
            EXPECT_TRUE(rel_close(y, y_ref, 2e-5)) << "T=" << T << " chunk=" << chunk;
            EXPECT_TRUE(rel_close(s, s_ref, 2e-5)) << "T=" << T << " chunk=" << chunk;
        }
    }
}

TEST(WkvChunked, VeryFastDecaysDoNotOverflow) {
    auto in = make_inputs(1, 64, 2, 16, 5, false);
    in.lw = in.lw * 40;  // log decays down to about −180 per step: exp of chunk sums would overflow fp32
    auto [y, s] = aviary::wkv_chunked(in.r, in.k, in.v, in.lw, in.u, in.s0, 32);
    auto [y_ref, s_ref] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, in.s0);
    // Cumulative sums reach ~−5000 here, so fp32 cancellation in E_t − G_a costs ~1e-5 relative: 1e-4.
    EXPECT_TRUE(rel_close(y, y_ref, 1e-4));
    EXPECT_TRUE(rel_close(s, s_ref, 1e-4));
}

TEST(WkvChunked, GradientsMatchReference) {
    const int64_t T = 37, chunk = 16;  // not a multiple of the chunk
    auto a = make_inputs(2, T, 2, 16, 77, true);
    auto b = make_inputs(2, T, 2, 16, 77, true);
    auto gen = at::detail::createCPUGenerator(78);
    at::Tensor gy = at::randn({2, T, 2, 16}, gen), gs = at::randn({2, 2, 16, 16}, gen);
    auto [ya, sa] = aviary::wkv_chunked(a.r, a.k, a.v, a.lw, a.u, a.s0, chunk);
    ((ya * gy).sum() + (sa * gs).sum()).backward();
    auto [yb, sb] = aviary::wkv_reference(b.r, b.k, b.v, b.lw, b.u, b.s0);
    ((yb * gy).sum() + (sb * gs).sum()).backward();
    const char* names[] = {"r", "k", "v", "log_w", "u", "s0"};
    at::Tensor* ga[] = {&a.r, &a.k, &a.v, &a.lw, &a.u, &a.s0};
    at::Tensor* gb[] = {&b.r, &b.k, &b.v, &b.lw, &b.u, &b.s0};
    for (int i = 0; i < 6; ++i) EXPECT_TRUE(rel_close(ga[i]->grad(), gb[i]->grad(), 5e-5)) << "grad " << names[i];
}

// The fused CPU loops (wkv_cpu.cpp) against the scalar double recurrence (values) and the reference's autograd
// (every gradient): T not a multiple of the 16-token checkpoint span, batch and heads > 1, with and without an
// initial state, log_w broadcast over B and T (the RWKV-5 case), and a gradient into the final state or none.
TEST(WkvCpu, ValuesMatchTheScalarRecurrence) {
    for (int64_t T : {1, 15, 16, 17, 50}) {
        auto in = make_inputs(2, T, 3, 16, 500 + T, false);
        auto [y, s] = aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0);
        auto [y_ref, s_ref] = scalar_wkv(in);
        EXPECT_TRUE(rel_close(y, y_ref, 1e-5)) << "T=" << T;
        EXPECT_TRUE(rel_close(s, s_ref, 1e-5)) << "T=" << T;
    }
    auto in = make_inputs(1, 9, 2, 8, 8, false);
    auto [y1, s1] = aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, at::Tensor());
    in.s0 = at::zeros_like(in.s0);
    auto [y_ref, s_ref] = scalar_wkv(in);
    EXPECT_TRUE(rel_close(y1, y_ref, 1e-5));
    EXPECT_TRUE(rel_close(s1, s_ref, 1e-5));
}

struct GradCase {
    int64_t T;
    bool state, broadcast_w, grad_state_out;
    int64_t N = 16;
};

// wkv_cpu's gradients (all six inputs) against the reference recurrence's autograd, for one case.
void expect_gradients_match_reference(const GradCase& c, const std::string& where) {
    const int64_t N = c.N;
    auto a = make_inputs(2, c.T, 2, N, 90 + c.T + N, true);
    auto b = make_inputs(2, c.T, 2, N, 90 + c.T + N, true);
    if (c.broadcast_w)
        for (auto* in : {&a, &b}) in->lw = in->lw.detach().narrow(0, 0, 1).narrow(1, 0, 1).clone().requires_grad_();
    auto gen = at::detail::createCPUGenerator(91);
    at::Tensor gy = at::randn({2, c.T, 2, N}, gen), gs = at::randn({2, 2, N, N}, gen);
    auto [ya, sa] = aviary::wkv_cpu(a.r, a.k, a.v, a.lw, a.u, c.state ? a.s0 : at::Tensor());
    auto [yb, sb] = aviary::wkv_reference(b.r, b.k, b.v, b.lw, b.u, c.state ? b.s0 : at::Tensor());
    EXPECT_TRUE(rel_close(ya, yb, 1e-5)) << where;
    EXPECT_TRUE(rel_close(sa, sb, 1e-5)) << where;
    at::Tensor la = (ya * gy).sum(), lb = (yb * gy).sum();
    if (c.grad_state_out) {
        la = la + (sa * gs).sum();
        lb = lb + (sb * gs).sum();
    }
    la.backward();
    lb.backward();
    const char* names[] = {"r", "k", "v", "log_w", "u", "s0"};
    at::Tensor* ga[] = {&a.r, &a.k, &a.v, &a.lw, &a.u, &a.s0};
    at::Tensor* gb[] = {&b.r, &b.k, &b.v, &b.lw, &b.u, &b.s0};
    for (int i = 0; i < (c.state ? 6 : 5); ++i) {
        ASSERT_TRUE(ga[i]->grad().defined()) << names[i] << " " << where;
        EXPECT_TRUE(rel_close(ga[i]->grad(), gb[i]->grad(), 2e-5))
            << "grad " << names[i] << " T=" << c.T << " N=" << N << " " << where;
    }
    if (!c.state) {
        EXPECT_FALSE(a.s0.grad().defined()) << where;
    }
}

TEST(WkvCpu, GradientsMatchReference) {
    // N 12 and 20: the 4-lane loops; T 37 and 33: several checkpoint spans, the last one partial
    for (const GradCase& c :
         {GradCase{37, true, false, true}, GradCase{16, false, false, true}, GradCase{33, true, true, false},
          GradCase{5, true, false, false}, GradCase{19, true, false, true, 12}, GradCase{9, false, true, true, 20}})
        expect_gradients_match_reference(c, "default version " + aviary::wkv_cpu_version_for(c.N));
}

// Forces one version of the fused loops for a scope (wkv_cpu_version_for then names it).
struct ForcedWkvVersion {
    explicit ForcedWkvVersion(const std::string& name) { aviary::set_wkv_cpu_version(name); }
    ~ForcedWkvVersion() { aviary::set_wkv_cpu_version(""); }
};

// Every version this CPU runs ("scalar", "baseline", and "avx2" / "avx512" where it has them), at every head size its
// lanes divide among 64 (the real one; whole column blocks), 48 and 32 (a partial last block of 3 and 2 vectors in
// the 16-lane loops), 16, 12 and 9 (one lane only): values against the scalar float64 recurrence, every gradient
// against the reference's autograd, with and without a state, RWKV-5's broadcast decay.
TEST(WkvCpu, EveryVersionMatchesTheRecurrenceAndTheReferenceGradients) {
    const auto versions = aviary::wkv_cpu_versions();
    ASSERT_GE(versions.size(), 2u);
    EXPECT_EQ(versions[0], "scalar");
    EXPECT_EQ(versions[1], "baseline");
    for (const auto& name : versions) {
        ForcedWkvVersion forced(name);
        int ran = 0;
        for (int64_t N : {64, 48, 32, 16, 12, 9}) {
            const int lanes = name == "scalar" ? 1 : name == "baseline" ? 4 : name == "avx2" ? 8 : 16;
            if (N % lanes != 0) {
                auto in = make_inputs(1, 3, 1, N, 5, false);
                EXPECT_THROW(aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0), aviary::Error) << name << N;
                continue;
            }
            ASSERT_EQ(aviary::wkv_cpu_version_for(N), name);
            auto in = make_inputs(2, 21, 2, N, 700 + N, false);
            auto [y, s] = aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0);
            auto [y_ref, s_ref] = scalar_wkv(in);
            EXPECT_TRUE(rel_close(y, y_ref, 1e-5)) << name << " N=" << N;
            EXPECT_TRUE(rel_close(s, s_ref, 1e-5)) << name << " N=" << N;
            const std::string where = "version " + name;
            expect_gradients_match_reference(GradCase{37, true, false, true, N}, where);
            expect_gradients_match_reference(GradCase{18, false, true, false, N}, where);
            ++ran;
        }
        std::printf("[wkv_cpu] version %s: %d head sizes\n", name.c_str(), ran);
        EXPECT_GT(ran, 0) << name;
    }
    EXPECT_EQ(aviary::wkv_cpu_version_for(64), versions.back());  // the default: the widest
    EXPECT_THROW(aviary::set_wkv_cpu_version("avx1024"), aviary::Error);
}

// The loop over (sequence, head) pairs is split by parallel_for_shares (threads.h; its own test is in
// test_threads.cpp) between LibTorch's intra-op threads: two inside TorchThreadsScope with two cores (bf16 training),
// one where set_thread_count() gives the cores to OpenBLAS (fp32). The split changes no bit: each pair's recurrence
// runs whole on one thread.
TEST(WkvCpu, SameBitsOnOneThreadAndTwo) {
    const int intra_before = at::get_num_threads(), blas_before = aviary::thread_count();
    auto in = make_inputs(3, 40, 3, 16, 31, true);
    std::vector<at::Tensor> ys, grads;
    std::vector<int> shares;
    auto run = [&] {
        shares.push_back(aviary::parallel_for_shares(3 * 3, [](int64_t, int64_t) {}));
        for (auto* t : {&in.r, &in.k, &in.v, &in.lw, &in.u, &in.s0}) t->mutable_grad() = at::Tensor();
        auto [y, s] = aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0);
        (y.sum() + s.square().sum()).backward();
        ys.push_back(y.detach());
        grads.push_back(at::cat({in.r.grad().flatten(), in.k.grad().flatten(), in.v.grad().flatten(),
                                 in.lw.grad().flatten(), in.u.grad().flatten(), in.s0.grad().flatten()}));
    };
    aviary::set_thread_count(2);  // OpenBLAS 2, LibTorch 1
    run();
    {
        aviary::TorchThreadsScope all;  // LibTorch thread_count(), OpenBLAS 1
        run();
    }
    aviary::set_thread_count(blas_before);
    at::set_num_threads(intra_before);
    std::printf("[wkv_cpu] shares: %d, then %d\n", shares[0], shares[1]);
    EXPECT_EQ(shares[0], 1);
    EXPECT_TRUE(at::equal(ys[0], ys[1]));
    EXPECT_TRUE(at::equal(grads[0], grads[1]));
}

TEST(WkvCpu, NoGraphWithoutGradAndBadInputsAreErrors) {
    auto in = make_inputs(1, 20, 2, 8, 4, true);
    {
        torch::NoGradGuard no_grad;
        auto [y, s] = aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0);
        EXPECT_FALSE(y.requires_grad());
    }
    EXPECT_THROW(aviary::wkv_cpu(in.r, in.k.narrow(1, 0, 5), in.v, in.lw, in.u, in.s0), aviary::Error);
    EXPECT_THROW(aviary::wkv_cpu(in.r, in.k, in.v, in.lw, in.u, in.s0.narrow(2, 0, 4)), aviary::Error);
}

TEST(WkvDispatch, PicksAPathAndRejectsBadShapes) {
    auto in = make_inputs(1, 70, 2, 8, 3, false);
    auto [y, s] = aviary::wkv(in.r, in.k, in.v, in.lw, in.u, in.s0);  // Auto: the fused loops on CPU
    auto [y_ref, s_ref] = aviary::wkv_reference(in.r, in.k, in.v, in.lw, in.u, in.s0);
    EXPECT_TRUE(rel_close(y, y_ref, 2e-5));
    EXPECT_THROW(aviary::wkv(in.r, in.k.narrow(1, 0, 5), in.v, in.lw, in.u, in.s0), aviary::Error);
    EXPECT_THROW(aviary::wkv(in.r, in.k, in.v, in.lw, in.u.narrow(1, 0, 4), in.s0), aviary::Error);
    if (!aviary::wkv_cuda_available()) {
        EXPECT_THROW(aviary::wkv(in.r, in.k, in.v, in.lw, in.u, in.s0, aviary::WkvImpl::Cuda), aviary::Error);
    }
}

// bf16 training's CPU autocast (core/src/trainer.cpp) stops at the WKV (wkv_dispatch.cpp): on bf16 r, k, v every
// CPU path returns exactly what it returns for the same values in fp32 without autocast (the chunked form's
// matmuls included, which autocast would otherwise round to bf16), in fp32, and the gradients reach the bf16
// inputs as bf16.
TEST(WkvDispatch, RunsInFp32UnderBf16Autocast) {
    auto in = make_inputs(2, 40, 2, 8, 4, false);
    const at::Tensor r = in.r.to(at::kBFloat16), k = in.k.to(at::kBFloat16), v = in.v.to(at::kBFloat16);
    for (auto impl : {aviary::WkvImpl::Cpu, aviary::WkvImpl::Chunked, aviary::WkvImpl::Reference}) {
        auto [y_ref, s_ref] =
            aviary::wkv(r.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), in.lw, in.u, in.s0, impl, 16);
        at::Tensor y, s;
        {
            aviary::test::Bf16Autocast autocast;
            std::tie(y, s) = aviary::wkv(r, k, v, in.lw, in.u, in.s0, impl, 16);
        }
        EXPECT_EQ(y.scalar_type(), at::kFloat) << aviary::wkv_impl_name(impl);
        EXPECT_TRUE(at::equal(y, y_ref)) << aviary::wkv_impl_name(impl) << ": " << rel_close(y, y_ref, 0).message();
        EXPECT_TRUE(at::equal(s, s_ref)) << aviary::wkv_impl_name(impl) << ": " << rel_close(s, s_ref, 0).message();
    }
    const at::Tensor rg = r.clone().set_requires_grad(true);
    {
        aviary::test::Bf16Autocast autocast;
        aviary::wkv(rg, k, v, in.lw, in.u, in.s0).first.sum().backward();
    }
    ASSERT_TRUE(rg.grad().defined());
    EXPECT_EQ(rg.grad().scalar_type(), at::kBFloat16);
}

}  // namespace

// ---- RWKV-4 WKV (wkv4.h) ----
namespace {

struct Wkv4Inputs {
    at::Tensor w, u, k, v;
};
Wkv4Inputs wkv4_inputs(int64_t B, int64_t T, int64_t C, at::ScalarType dt, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto o = at::TensorOptions().dtype(dt);
    return {-at::exp(at::empty({C}, o).uniform_(-3, 1, gen)),  // w = −exp(time_decay) < 0
            at::empty({C}, o).uniform_(-1, 1, gen), at::empty({B, T, C}, o).normal_(0, 1, gen),
            at::empty({B, T, C}, o).normal_(0, 1, gen)};
}

}  // namespace

// The definition written out as plain sums in float64 (no running maximum): the oracle of both forms.
TEST(Wkv4, ReferenceMatchesTheDefinition) {
    auto in = wkv4_inputs(2, 9, 5, at::kDouble, 11);
    auto [y, s] = aviary::wkv4_reference(in.w, in.u, in.k, in.v, at::Tensor());
    auto w = in.w.accessor<double, 1>(), u = in.u.accessor<double, 1>();
    auto k = in.k.accessor<double, 3>(), v = in.v.accessor<double, 3>();
    at::Tensor expected = at::empty_like(y);
    auto e = expected.accessor<double, 3>();
    for (int b = 0; b < 2; ++b)
        for (int t = 0; t < 9; ++t)
            for (int c = 0; c < 5; ++c) {
                double num = std::exp(u[c] + k[b][t][c]) * v[b][t][c], den = std::exp(u[c] + k[b][t][c]);
                for (int i = 0; i < t; ++i) {
                    const double a = std::exp((t - 1 - i) * w[c] + k[b][i][c]);
                    num += a * v[b][i][c];
                    den += a;
                }
                e[b][t][c] = num / den;
            }
    EXPECT_TRUE(rel_close(y, expected, 1e-12));
    // state: aa·e^pp = Σ e^{(T−1−i)w + k_i} v_i, bb·e^pp = Σ e^{(T−1−i)w + k_i}
    at::Tensor pos = at::arange(9, at::kDouble).view({1, 9, 1});
    at::Tensor a = at::exp((8 - pos) * in.w.view({1, 1, 5}) + in.k);
    EXPECT_TRUE(rel_close(s.select(1, 0) * s.select(1, 2).exp(), (a * in.v).sum(1), 1e-12));
    EXPECT_TRUE(rel_close(s.select(1, 1) * s.select(1, 2).exp(), a.sum(1), 1e-12));
}

TEST(Wkv4, ParallelMatchesReferenceWithCarriedState) {
    for (auto dt : {at::kDouble, at::kFloat}) {
        auto in = wkv4_inputs(3, 37, 16, dt, 12);
        auto [y_ref, s_ref] = aviary::wkv4_reference(in.w, in.u, in.k, in.v, at::Tensor());
        auto [y, s] = aviary::wkv4_parallel(in.w, in.u, in.k, in.v, at::Tensor(), /*block=*/8);
        const double tol = dt == at::kDouble ? 1e-12 : 2e-5;
        EXPECT_TRUE(rel_close(y, y_ref, tol));
        EXPECT_TRUE(rel_close(s, s_ref, tol));
        // 20 tokens, then the other 17 from the carried state
        auto [y1, s1] = aviary::wkv4_parallel(in.w, in.u, in.k.narrow(1, 0, 20), in.v.narrow(1, 0, 20), at::Tensor());
        auto [y2, s2] = aviary::wkv4_parallel(in.w, in.u, in.k.narrow(1, 20, 17), in.v.narrow(1, 20, 17), s1, 5);
        EXPECT_TRUE(rel_close(at::cat({y1, y2}, 1), y_ref, tol));
        EXPECT_TRUE(rel_close(s2, s_ref, tol));
    }
}

TEST(Wkv4, LargeKeysDoNotOverflowInFloat32) {
    auto in = wkv4_inputs(1, 16, 8, at::kFloat, 13);
    at::Tensor k = in.k * 60;  // e^{±180}: far outside fp32 without the running maximum
    auto [y_ref, s_ref] = aviary::wkv4_reference(in.w.to(at::kDouble), in.u.to(at::kDouble), k.to(at::kDouble),
                                                 in.v.to(at::kDouble), at::Tensor());
    auto [y, s] = aviary::wkv4_parallel(in.w, in.u, k, in.v, at::Tensor(), 4);
    ASSERT_TRUE(at::isfinite(y).all().item<bool>());
    EXPECT_TRUE(rel_close(y.to(at::kDouble), y_ref, 1e-5));
}

TEST(Wkv4, ParallelGradientsMatchReference) {
    auto in = wkv4_inputs(2, 13, 6, at::kDouble, 14);
    auto [y0, state0] = aviary::wkv4_reference(in.w, in.u, in.k.narrow(1, 0, 4), in.v.narrow(1, 0, 4), at::Tensor());
    auto grads = [&](bool parallel) {
        at::Tensor w = in.w.clone().requires_grad_(), u = in.u.clone().requires_grad_();
        at::Tensor k = in.k.clone().requires_grad_(), v = in.v.clone().requires_grad_();
        at::Tensor s0 = state0.clone();
        s0.requires_grad_();
        auto out = parallel ? aviary::wkv4_parallel(w, u, k, v, s0, 5) : aviary::wkv4_reference(w, u, k, v, s0);
        at::Tensor weights = at::sin(at::arange(out.first.numel(), at::kDouble)).view_as(out.first);
        ((out.first * weights).sum() + out.second.narrow(1, 0, 2).sum()).backward();
        return std::vector<at::Tensor>{w.grad(), u.grad(), k.grad(), v.grad(), s0.grad().narrow(1, 0, 2)};
    };
    auto ref = grads(false), par = grads(true);
    const char* names[] = {"w", "u", "k", "v", "state aa/bb"};
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_TRUE(rel_close(par[i], ref[i], 1e-9)) << names[i];
}
