// Tests of the CPU decode engine (core/src/cpu_engine.cpp): fp32 logits and state against the official package's
// RNN-mode logits (tests/fixtures/golden, tools/make_golden.py) and against Model::step (itself golden-tested) for
// v5.2 and v6, batch 1 and > 1, several steps, from a sequence-mode prefill state, with every kernel set and thread
// count; bf16 and int8 weights against fp32 with the max relative error and top-1 agreement printed and bounded
// (random official-like configs, and the shipped music model on the music validation set).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "aviary/core/checkpoint.h"
#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_int8.h"
#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_gemm.h"
#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/model_shapes.h"
#include "aviary/core/threads.h"
#include "aviary/core/train_data.h"
#include "common/compare.h"

using aviary::CpuEngine;
using aviary::CpuEngineOptions;
using aviary::Model;
using aviary::State;
using aviary::test::fixture;
using aviary::test::rel_close;

namespace {

// A small official-like config (head size 64, LoRA ranks 32/64) with random weights; the LoRA matrices are scaled
// up from model_shapes' 0.01 so that the ddlerp and decay LoRAs change the result visibly (a wrong LoRA fails).
aviary::TensorList random_tensors(int version, int n_layer = 2, int n_embd = 128, int vocab = 300, uint64_t seed = 5,
                                  double lora_scale = 30.0) {
    aviary::ModelConfig c = aviary::init_config(n_layer, n_embd, version, vocab);
    aviary::TensorList w = aviary::random_weights(c, seed);
    for (auto& nt : w) {
        if (nt.name.find("_w1") != std::string::npos || nt.name.find("_w2") != std::string::npos)
            nt.tensor = nt.tensor * lora_scale;
    }
    return w;
}

Model random_model(int version, int n_layer = 2, int n_embd = 128, int vocab = 300, uint64_t seed = 5,
                   double lora_scale = 30.0) {
    return Model::from_tensors(random_tensors(version, n_layer, n_embd, vocab, seed, lora_scale));
}

std::vector<std::string> kernel_sets() {
    std::vector<std::string> out;
    for (const aviary::cpu::KernelSet* s : aviary::cpu::kernels_available()) out.push_back(s->name);
    return out;
}

void expect_states_close(const State& got, const State& want, double tol, const std::string& what) {
    for (int l = 0; l < want.n_layer(); ++l) {
        EXPECT_TRUE(rel_close(got.att_shift[l], want.att_shift[l], tol)) << what << " att_shift layer " << l;
        EXPECT_TRUE(rel_close(got.wkv[l], want.wkv[l], tol)) << what << " wkv layer " << l;
        EXPECT_TRUE(rel_close(got.ffn_shift[l], want.ffn_shift[l], tol)) << what << " ffn_shift layer " << l;
    }
}

// Top-1 agreement and max relative error (max |Δ| / max |ref| per row, the worst row) of logits (B, V).
struct Agreement {
    int64_t same = 0, total = 0;
    double max_rel = 0;
    void add(const at::Tensor& got, const at::Tensor& ref) {
        same += (got.argmax(-1) == ref.argmax(-1)).sum().item<int64_t>();
        total += ref.size(0);
        const at::Tensor rel = (got - ref).abs().amax(-1) / ref.abs().amax(-1);
        max_rel = std::max(max_rel, rel.max().item<double>());
    }
    double rate() const { return total ? double(same) / total : 0; }
};

}  // namespace

class CpuEngineVersion : public ::testing::TestWithParam<int> {};

// Independent oracle: the official rwkv package's RNN logits for the golden checkpoints (fp32 strategy).
TEST(CpuEngineGolden, RnnLogitsMatchTheOfficialPackage) {
    for (const std::string name : {"v5_fp32", "v6_fp32", "v6_state_bf16"}) {
        const aviary::TensorList g = aviary::read_safetensors(fixture("golden/" + name + ".expected.safetensors"));
        Model model = Model::load(fixture("golden/" + name + ".pth"));
        const at::Tensor tokens = aviary::find_tensor(g, "tokens")->to(at::kLong);
        const at::Tensor expected = *aviary::find_tensor(g, "logits_rnn");
        for (const std::string& ks : kernel_sets()) {
            CpuEngineOptions eo;
            eo.kernels = ks;
            CpuEngine engine(model, eo);
            State state = model.new_state(1);
            for (int64_t t = 0; t < tokens.size(0); ++t) {
                at::Tensor logits = engine.step(tokens.narrow(0, t, 1), state).squeeze(0);
                EXPECT_TRUE(rel_close(logits, expected[t], 1e-4)) << name << " " << ks << " token " << t;
            }
            for (int l = 0; l < model.config().n_layer; ++l)
                EXPECT_TRUE(rel_close(state.wkv[l].squeeze(0),
                                      *aviary::find_tensor(g, "state." + std::to_string(l) + ".wkv"), 1e-4))
                    << name << " " << ks << " layer " << l;
        }
    }
}

// use_kernels switches an engine's kernel set in place: each step equals, bit for bit, the step of an engine built
// with that set from the same state; an unknown name is an error and leaves the set as it was.
TEST(CpuEngineKernelSwitch, UseKernelsEqualsAnEngineBuiltWithTheSet) {
    Model model = random_model(6);
    const at::Tensor tok = at::tensor({5, 77}, at::kLong);
    for (const std::string dtype : {"fp32", "int8"}) {
        CpuEngineOptions first;
        first.dtype = dtype;
        first.kernels = "scalar";
        first.threads = 2;
        CpuEngine switched(model, first);
        for (const std::string& ks : kernel_sets()) {
            switched.use_kernels(ks);
            EXPECT_EQ(switched.kernel_name(), ks);
            CpuEngineOptions eo = first;
            eo.kernels = ks;
            CpuEngine built(model, eo);
            State a = model.new_state(2), b = model.new_state(2);
            for (int t = 0; t < 3; ++t)
                ASSERT_TRUE(at::equal(switched.step(tok, a), built.step(tok, b)))
                    << dtype << " " << ks << " step " << t;
        }
        EXPECT_THROW(switched.use_kernels("avx1024"), aviary::Error);
        EXPECT_EQ(switched.kernel_name(), kernel_sets().back());
    }
}

// fp32 engine == Model::step over several steps, batch 1 and 3, from a sequence-mode prefill, every kernel set
// and 1 or 2 threads.
TEST_P(CpuEngineVersion, Fp32MatchesModelStep) {
    const int version = GetParam();
    Model model = random_model(version);
    const int64_t V = model.config().vocab_size;
    for (int64_t batch : {1, 3}) {
        at::Tensor prompt = at::randint(1, V, {batch, 7}, at::detail::createCPUGenerator(11 + batch), at::kLong);
        State prefilled = model.new_state(batch);
        model.forward(prompt, prefilled, false);
        at::Tensor steps = at::randint(1, V, {6, batch}, at::detail::createCPUGenerator(3), at::kLong);
        for (const std::string& ks : kernel_sets()) {
            for (int threads : {1, 2}) {
                CpuEngineOptions eo;
                eo.kernels = ks;
                eo.threads = threads;
                CpuEngine engine(model, eo);
                EXPECT_EQ(engine.dtype(), "fp32");
                State ref = prefilled.clone(), got = prefilled.clone();
                for (int64_t t = 0; t < steps.size(0); ++t) {
                    const at::Tensor want = model.step(steps[t], ref);
                    const at::Tensor have = engine.step(steps[t], got);
                    const std::string what = "v" + std::to_string(version) + " batch " + std::to_string(batch) + " " +
                                             ks + " threads " + std::to_string(threads) + " step " + std::to_string(t);
                    ASSERT_TRUE(rel_close(have, want, 1e-5)) << what;
                }
                expect_states_close(got, ref, 1e-5, ks);
            }
        }
    }
}

// Each matrix row is computed once, by whichever thread claims its block: with more threads than this machine has
// cores (so threads are descheduled and the others claim the blocks they have not reached), every step's logits and
// state equal one thread's bit for bit. A row done twice would add its residual twice (the att.output and ffn.value
// epilogues add into x); a row left out would leave a stale value.
TEST_P(CpuEngineVersion, BlocksClaimedByOtherThreadsGiveTheSameBits) {
    Model model = random_model(GetParam(), 2, 256, 1000, 7);
    for (const char* dtype : {"fp32", "int8"}) {
        for (int64_t batch : {1, 3}) {
            CpuEngineOptions one_thread, many;
            one_thread.dtype = many.dtype = dtype;
            one_thread.threads = 1;
            many.threads = 7;
            CpuEngine a(model, one_thread), b(model, many);
            State sa = model.new_state(batch), sb = model.new_state(batch);
            at::Tensor tok = at::full({batch}, 3, at::kLong);
            for (int t = 0; t < 40; ++t) {
                const at::Tensor la = a.step(tok, sa), lb = b.step(tok, sb);
                ASSERT_TRUE(at::equal(la, lb)) << dtype << " batch " << batch << " step " << t;
                tok = la.argmax(-1);
            }
            for (int l = 0; l < model.config().n_layer; ++l)
                ASSERT_TRUE(at::equal(sa.wkv[l], sb.wkv[l])) << dtype << " layer " << l;
        }
    }
}

// A batch of different sequences equals each sequence decoded alone (no cross-talk between batch rows).
TEST_P(CpuEngineVersion, BatchRowsAreIndependent) {
    Model model = random_model(GetParam());
    CpuEngine engine(model);
    const int64_t V = model.config().vocab_size;
    at::Tensor steps = at::randint(1, V, {4, 5}, at::detail::createCPUGenerator(9), at::kLong);
    State batch_state = model.new_state(5);
    at::Tensor batch_logits;
    for (int64_t t = 0; t < 4; ++t) batch_logits = engine.step(steps[t], batch_state);
    for (int64_t b = 0; b < 5; ++b) {
        State single = model.new_state(1);
        at::Tensor logits;
        for (int64_t t = 0; t < 4; ++t) logits = engine.step(steps[t].narrow(0, b, 1), single);
        EXPECT_TRUE(rel_close(batch_logits[b], logits[0], 1e-6)) << "row " << b;
    }
}

// The bf16 / int8 engines compute exactly the fp32 model whose matrices hold the rounded values: bf16-rounded
// matrices, or the int8 codes times their row scales (quantize_checkpoint_int8 then dequantize_checkpoint_int8),
// run by Model::step in fp32. Only the weight rounding differs from fp32; everything else must agree to 1e-5.
TEST_P(CpuEngineVersion, Bf16AndInt8ComputeTheModelOfTheirRoundedWeights) {
    const int version = GetParam();
    const aviary::TensorList w = random_tensors(version);
    Model model = Model::from_tensors(w);
    aviary::TensorList rounded_bf16;
    for (const auto& nt : w)
        rounded_bf16.push_back(
            {nt.name, aviary::is_matrix_weight(nt.name) ? nt.tensor.to(at::kBFloat16).to(at::kFloat) : nt.tensor});
    const aviary::TensorList rounded_int8 = aviary::dequantize_checkpoint_int8(aviary::quantize_checkpoint_int8(w));
    const int64_t V = model.config().vocab_size;
    for (const std::string dtype : {"bf16", "int8"}) {
        Model reference = Model::from_tensors(dtype == "bf16" ? rounded_bf16 : rounded_int8);
        for (const std::string& ks : kernel_sets()) {
            CpuEngineOptions eo;
            eo.dtype = dtype;
            eo.kernels = ks;
            eo.threads = 2;
            CpuEngine engine(model, eo);
            State ref = reference.new_state(2), got = model.new_state(2);
            at::Tensor tok = at::tensor({3, 250}, at::kLong);
            // int8 kernels also round the activations to int16 codes (cpu_engine_kernels.h): ~1e-4 after 4 layers
            const double tol = dtype == "int8" ? 5e-4 : 1e-5;
            for (int t = 0; t < 5; ++t) {
                const at::Tensor want = reference.step(tok, ref), have = engine.step(tok, got);
                ASSERT_TRUE(rel_close(have, want, tol)) << dtype << " " << ks << " step " << t;
                tok = at::randint(1, V, {2}, at::detail::createCPUGenerator(40 + t), at::kLong);
            }
            expect_states_close(got, ref, tol, dtype + " " + ks);
        }
    }
}

// A bf16 checkpoint's LoRAs (the model widens them to fp32) are stored in bf16 by the bf16 and int8 engines: bf16
// holds them exactly, so they read half the bytes and compute the same. The same model with one fp32 ulp added to
// one value of every LoRA matrix (no longer exact in bf16: kept fp32) is the comparison: bytes per token differ by
// exactly 2 per LoRA value, logits and states agree to 1e-5 (int8: 5e-4, its int16 activation codes can round
// apart) in decode on every kernel set and in prefill on every GEMM path; so the oneDNN path multiplies
// bf16-stored LoRAs by fp32 activations, as it does fp32 ones. The fp32 engine keeps fp32 LoRAs. Independently, the
// bf16-LoRA engines equal LibTorch's Model (forward and step, fp32) on the weights they hold, as in
// Bf16AndInt8ComputeTheModelOfTheirRoundedWeights.
TEST(CpuEngineWeights, LorasExactInBf16AreReadAsBf16) {
    aviary::TensorList exact = random_tensors(6);
    aviary::round_to_bf16_values(exact);
    int64_t lora_values = 0;
    aviary::TensorList nudged = exact;
    for (auto& nt : nudged)
        if (nt.name.find("_w1") != std::string::npos || nt.name.find("_w2") != std::string::npos) {
            lora_values += nt.tensor.numel();
            nt.tensor = nt.tensor.clone().contiguous();
            float* v = nt.tensor.data_ptr<float>();
            const int64_t matrices = nt.tensor.dim() == 3 ? nt.tensor.size(0) : 1;  // time_maa_w2: (5, Lm, D)
            for (int64_t c = 0; c < matrices; ++c) {
                float& x = v[c * (nt.tensor.numel() / matrices)];
                x = std::nextafter(x, 1e30f);
            }
        }
    ASSERT_GT(lora_values, 0);
    Model bf16_model = Model::from_tensors(exact), fp32_model = Model::from_tensors(nudged);
    const int64_t V = bf16_model.config().vocab_size;
    const at::Tensor prompt = at::randint(0, V, {1, 45}, at::detail::createCPUGenerator(3), at::kLong);
    const aviary::cpu::OneDnnInfo& dnn = aviary::cpu::onednn_info();
    for (const std::string dtype : {"fp32", "bf16", "int8"}) {
        CpuEngineOptions eo;
        eo.dtype = dtype;
        eo.threads = 2;
        const double saved =
            CpuEngine(fp32_model, eo).weight_bytes_per_token() - CpuEngine(bf16_model, eo).weight_bytes_per_token();
        EXPECT_EQ(saved, dtype == "fp32" ? 0.0 : 2.0 * double(lora_values)) << dtype;
        if (dtype == "fp32") continue;
        const double tol = dtype == "int8" ? 5e-4 : 1e-5;  // as the other int8 tests (int16 activation codes)
        for (const std::string& ks : kernel_sets()) {
            eo.kernels = ks;
            CpuEngine a(bf16_model, eo), b(fp32_model, eo);
            State sa = bf16_model.new_state(2), sb = fp32_model.new_state(2);
            at::Tensor tok = at::tensor({3, 250}, at::kLong);
            for (int t = 0; t < 4; ++t) {
                ASSERT_TRUE(rel_close(a.step(tok, sa), b.step(tok, sb), tol)) << dtype << " " << ks << " step " << t;
                tok = at::randint(1, V, {2}, at::detail::createCPUGenerator(60 + t), at::kLong);
            }
            expect_states_close(sa, sb, tol, dtype + " " + ks);
        }
        {  // against LibTorch on the weights the engine holds (int8: the codes times their scales)
            Model reference = Model::from_tensors(
                dtype == "bf16" ? exact : aviary::dequantize_checkpoint_int8(aviary::quantize_checkpoint_int8(exact)));
            eo.kernels = "auto";
            eo.prefill_gemm = "blas";
            CpuEngine a(bf16_model, eo);
            State sa = bf16_model.new_state(2), sr = reference.new_state(2);
            const at::Tensor two = at::cat({prompt, prompt.flip({1})});
            ASSERT_TRUE(rel_close(a.prefill(two, sa), reference.forward(two, sr, false), tol)) << dtype << " prefill";
            at::Tensor tok = at::tensor({3, 250}, at::kLong);
            for (int t = 0; t < 3; ++t) {
                ASSERT_TRUE(rel_close(a.step(tok, sa), reference.step(tok, sr), tol)) << dtype << " Model step " << t;
                tok = at::randint(1, V, {2}, at::detail::createCPUGenerator(80 + t), at::kLong);
            }
            expect_states_close(sa, sr, tol, dtype + " against Model");
        }
        eo.kernels = "auto";
        std::vector<std::string> paths = {"blas"};
        if (dtype == "bf16" ? dnn.bf16_supported : dnn.int8_supported) paths.push_back("onednn");
        for (const std::string& path : paths) {
            eo.prefill_gemm = path;
            eo.prefill_chunk = 64;  // one block: the decay LoRA split by tokens between the 2 threads
            CpuEngine a(bf16_model, eo), b(fp32_model, eo);
            State sa = bf16_model.new_state(1), sb = fp32_model.new_state(1);
            const at::Tensor la = a.prefill(prompt, sa), lb = b.prefill(prompt, sb);
            std::printf("[ info ] %s prefill on %s, LoRAs in bf16 vs fp32: max rel difference %.3g\n", dtype.c_str(),
                        a.prefill_gemm_name().c_str(),
                        (la - lb).abs().max().item<double>() / lb.abs().max().item<double>());
            ASSERT_TRUE(rel_close(la, lb, tol)) << dtype << " prefill on " << path;
            expect_states_close(sa, sb, tol, dtype + " prefill on " + path);
        }
    }
}

// bf16 and int8 weights against fp32 Model::step on random weights of an official-like shape (model_shapes'
// distributions, as `aviary bench --shape`; 4 layers, D 512, V 4096): max relative error (per row max|Δ| / max|ref|,
// the worst row) and top-1 agreement over 40 steps of batch 4, printed. Random weights give nearly flat logits with
// close runners-up and amplify weight rounding through the layers (measured: bf16 ~1-7%, int8 ~5-28% max relative
// error, top-1 92-98%), so the bounds here are loose; the trained music model below is the quality criterion.
TEST_P(CpuEngineVersion, Bf16AndInt8StayCloseToFp32) {
    const int version = GetParam();
    Model model = random_model(version, 4, 512, 4096, 21, /*lora_scale=*/1.0);
    const int64_t V = model.config().vocab_size;
    for (const std::string dtype : {"bf16", "int8"}) {
        CpuEngineOptions eo;
        eo.dtype = dtype;
        CpuEngine engine(model, eo);
        EXPECT_EQ(engine.dtype(), dtype);
        State ref = model.new_state(4), got = model.new_state(4);
        Agreement agree;
        at::Tensor tok = at::randint(1, V, {4}, at::detail::createCPUGenerator(2), at::kLong);
        for (int t = 0; t < 40; ++t) {
            const at::Tensor want = model.step(tok, ref), have = engine.step(tok, got);
            agree.add(have, want);
            tok = at::randint(1, V, {4}, at::detail::createCPUGenerator(100 + t), at::kLong);
        }
        std::printf("[ info ] v%d random L4 D512: %s vs fp32: max rel error %.3g, top-1 agreement %.1f%% (%lld rows)\n",
                    version, dtype.c_str(), agree.max_rel, 100 * agree.rate(), static_cast<long long>(agree.total));
        EXPECT_LT(agree.max_rel, dtype == "bf16" ? 0.15 : 0.5) << dtype;
        EXPECT_GE(agree.rate(), 0.85) << dtype;
    }
}

INSTANTIATE_TEST_SUITE_P(Versions, CpuEngineVersion, ::testing::Values(5, 6));

// The shipped music model (Eagle L4 D256, trained here) on the music validation set (tests/fixtures/music/,
// made by tools/make_music_corpus.py): int8 keeps top-1 agreement with fp32 >= 99%, bf16 too. The fp32 reference
// is the fp32 engine (checked against Model::step above), decoding 8 streams of the set together.
TEST(CpuEngineMusic, Int8KeepsTop1OnTheMusicValidationSet) {
    const std::string model_path = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    const std::string val = std::string(AVIARY_FIXTURES_DIR) + "/music/validation";  // tests/fixtures/music/README.md
    Model model = Model::load(model_path);
    auto source = aviary::open_binidx(val);
    const int64_t streams = 8, steps = std::min<int64_t>(source->size() / streams, 1500);
    std::vector<int64_t> tokens(streams * steps);
    for (int64_t s = 0; s < streams; ++s) source->read(s * (source->size() / streams), steps, &tokens[s * steps]);
    CpuEngine ref_engine(model);
    for (const std::string dtype : {"bf16", "int8"}) {
        CpuEngineOptions eo;
        eo.dtype = dtype;
        CpuEngine engine(model, eo);
        State ref = model.new_state(streams), got = model.new_state(streams);
        Agreement agree;
        at::Tensor tok = at::empty({streams}, at::kLong);
        for (int64_t t = 0; t < steps; ++t) {
            for (int64_t s = 0; s < streams; ++s) tok[s] = tokens[s * steps + t];
            agree.add(engine.step(tok, got), ref_engine.step(tok, ref));
        }
        std::printf(
            "[ info ] music model %s vs fp32 on %lld validation tokens: max rel error %.3g, top-1 agreement "
            "%.2f%%\n",
            dtype.c_str(), static_cast<long long>(agree.total), agree.max_rel, 100 * agree.rate());
        EXPECT_GE(agree.rate(), 0.99) << dtype;
    }
}

// The prefill paths on the same validation set: 8 streams fed in blocks of 16 tokens (the state carried between
// blocks), the logits after each block compared with the fp32 engine's prefill (checked against the official
// package's sequence mode above). bf16 and int8 on the default path (oneDNN where the CPU has the units, the blas
// reference elsewhere) keep top-1 agreement >= 99 %.
TEST(CpuEngineMusic, PrefillPathsKeepTop1OnTheMusicValidationSet) {
    const std::string model_path = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    const std::string val = std::string(AVIARY_FIXTURES_DIR) + "/music/validation";
    Model model = Model::load(model_path);
    auto source = aviary::open_binidx(val);
    const int64_t streams = 8, block = 16, blocks = std::min<int64_t>(source->size() / streams / block, 60);
    std::vector<int64_t> tokens(streams * blocks * block);
    for (int64_t s = 0; s < streams; ++s)
        source->read(s * (source->size() / streams), blocks * block, &tokens[s * blocks * block]);
    CpuEngineOptions ref_options;
    ref_options.dtype = "fp32";
    CpuEngine ref_engine(model, ref_options);
    for (const std::string dtype : {"bf16", "int8"}) {
        CpuEngineOptions eo;
        eo.dtype = dtype;
        CpuEngine engine(model, eo);
        Agreement agree;
        for (int64_t s = 0; s < streams; ++s) {
            State ref = model.new_state(1), got = model.new_state(1);
            for (int64_t k = 0; k < blocks; ++k) {
                const at::Tensor tok = at::from_blob(&tokens[(s * blocks + k) * block], {1, block}, at::kLong).clone();
                agree.add(engine.prefill(tok, got), ref_engine.prefill(tok, ref));
            }
        }
        std::printf(
            "[ info ] music model prefill %s (%s) vs fp32 on %lld blocks: max rel error %.3g, top-1 agreement "
            "%.2f%%\n",
            dtype.c_str(), engine.prefill_gemm_name().c_str(), static_cast<long long>(agree.total), agree.max_rel,
            100 * agree.rate());
        EXPECT_GE(agree.rate(), 0.99) << dtype << " " << engine.prefill_gemm_name();
    }
}

// `aviary convert --dtype int8` files: loading dequantises them, and the int8 engine re-derives exactly the stored
// codes, so it decodes the same logits as the int8 engine on the original fp32 model. Broken files are errors.
TEST(CpuEngineInt8File, StoredCodesRoundTripThroughTheEngine) {
    const aviary::TensorList w = random_tensors(6);
    const aviary::TensorList q = aviary::quantize_checkpoint_int8(w);
    ASSERT_TRUE(aviary::is_int8_checkpoint(q));
    EXPECT_FALSE(aviary::is_int8_checkpoint(w));
    int int8_matrices = 0;
    for (const auto& nt : q) int8_matrices += nt.tensor.scalar_type() == at::kChar;
    EXPECT_EQ(int8_matrices, 2 + 8 * 2);  // emb, head, 8 matrices in each of 2 layers
    EXPECT_EQ(aviary::find_tensor(q, "blocks.0.att.time_maa_w1")->scalar_type(), at::kFloat);  // LoRAs stay fp32
    Model original = Model::from_tensors(w), loaded = Model::from_tensors(aviary::dequantize_checkpoint_int8(q));
    CpuEngineOptions eo;
    eo.dtype = "int8";
    CpuEngine a(original, eo), b(loaded, eo);
    State sa = original.new_state(2), sb = loaded.new_state(2);
    at::Tensor tok = at::tensor({7, 123}, at::kLong);
    for (int t = 0; t < 4; ++t) {
        const at::Tensor la = a.step(tok, sa), lb = b.step(tok, sb);
        ASSERT_TRUE(rel_close(lb, la, 1e-6)) << "step " << t;
        tok = la.argmax(-1);
    }
    aviary::TensorList missing;
    for (const auto& nt : q)
        if (nt.name != "head.weight.int8_scale") missing.push_back(nt);
    EXPECT_THROW(aviary::dequantize_checkpoint_int8(missing), aviary::Error);
    EXPECT_THROW(aviary::quantize_checkpoint_int8(q), aviary::Error);  // already int8
}

TEST(CpuEngineErrors, BadTokensStatesAndModelsAreErrors) {
    Model model = random_model(6);
    CpuEngine engine(model);
    State state = model.new_state(2);
    EXPECT_THROW(engine.step(at::tensor({1, 300}, at::kLong), state), aviary::Error);  // vocab is 300
    EXPECT_THROW(engine.step(at::tensor({-1, 3}, at::kLong), state), aviary::Error);
    EXPECT_THROW(engine.step(at::tensor({1, 2, 3}, at::kLong), state), aviary::Error);  // batch 3 vs state 2
    CpuEngineOptions eo;
    eo.dtype = "fp8";
    EXPECT_THROW(CpuEngine(model, eo), aviary::Error);
    Model lora = random_model(6);
    aviary::LoraOptions lo;
    lora.add_lora(lo);
    EXPECT_FALSE(CpuEngine::supports(lora));
    EXPECT_THROW(CpuEngine{lora}, aviary::Error);
}

// On the CPU, Decoder (what generate/chat/bench use) runs the engine and agrees with plain Model::step.
TEST(CpuEngineDecoder, DecoderUsesTheEngineOnTheCpu) {
    for (int version : {5, 6}) {
        Model model = random_model(version);
        aviary::Decoder fast(model, 2), plain(model, 2, /*use_graph=*/false);
        EXPECT_TRUE(fast.uses_engine());
        EXPECT_FALSE(plain.uses_engine());
        State start = model.new_state(2);
        model.forward(at::tensor({5, 6, 7, 8, 9, 10}, at::kLong).view({2, 3}), start, false);
        fast.load_state(start);
        plain.load_state(start);
        at::Tensor tok = at::tensor({11, 12}, at::kLong);
        for (int t = 0; t < 4; ++t) {
            const at::Tensor a = fast.step(tok), b = plain.step(tok);
            ASSERT_TRUE(rel_close(a, b, 1e-5)) << "v" << version << " step " << t;
            tok = b.argmax(-1);
        }
        expect_states_close(fast.state(), plain.state(), 1e-5, "decoder");
    }
}

// Each model keeps its own shared engine (a server holds a text and a VisualRWKV model), built with that model's own
// engine options: using another model does not rebuild the first one's, changing its weights does, and the engine is
// freed with its model.
TEST(CpuEngineShared, OneEnginePerModelFreedWithIt) {
    std::weak_ptr<aviary::CpuEngine> first_engine;
    {
        Model a = random_model(6), b = random_model(5);
        const auto ea = aviary::shared_cpu_engine(a);
        const auto eb = aviary::shared_cpu_engine(b);
        ASSERT_TRUE(ea && eb);
        EXPECT_NE(ea.get(), eb.get());
        EXPECT_EQ(aviary::shared_cpu_engine(a).get(), ea.get()) << "model b's engine replaced model a's";
        EXPECT_EQ(aviary::shared_cpu_engine(b).get(), eb.get());
        // In-place change of a weight: a new engine for that model only.
        {
            at::NoGradGuard no_grad;
            a.state_dict().back().tensor.add_(0.0);
        }
        EXPECT_NE(aviary::shared_cpu_engine(a).get(), ea.get());
        EXPECT_EQ(aviary::shared_cpu_engine(b).get(), eb.get());
        // Options are the model's own: a model loaded with one thread and int8 weights beside one with two threads
        // and its own dtype; neither changes the other's engine.
        aviary::ModelOptions one, two;
        one.cpu_engine.threads = 1;
        one.cpu_engine.dtype = "int8";
        two.cpu_engine.threads = 2;
        const Model c = Model::from_tensors(random_tensors(6, 2, 128, 300, 5, 30.0), one);
        const Model d = Model::from_tensors(random_tensors(6, 2, 128, 300, 5, 30.0), two);
        const auto ec = aviary::shared_cpu_engine(c), ed = aviary::shared_cpu_engine(d);
        ASSERT_TRUE(ec && ed);
        EXPECT_EQ(ec->threads(), 1);
        EXPECT_EQ(ec->dtype(), "int8");
        EXPECT_EQ(ed->threads(), 2);
        EXPECT_EQ(ed->dtype(), "fp32");
        EXPECT_EQ(aviary::shared_cpu_engine(b).get(), eb.get());
        first_engine = aviary::shared_cpu_engine(b);
    }
    EXPECT_TRUE(first_engine.expired()) << "the engine outlived its model";
}

// ---- prefill (sequence mode on the engine) ----

// The engine's prefill of the golden prompts against the official package's sequence-mode logits (last position)
// and state, in one block and in blocks of 5 tokens (the state carried across blocks), 1 and 2 threads.
TEST(CpuEnginePrefill, MatchesTheOfficialSequenceMode) {
    for (const std::string name : {"v5_fp32", "v6_fp32", "v6_state_bf16"}) {
        const aviary::TensorList g = aviary::read_safetensors(fixture("golden/" + name + ".expected.safetensors"));
        Model model = Model::load(fixture("golden/" + name + ".pth"));
        const at::Tensor tokens = aviary::find_tensor(g, "tokens")->to(at::kLong).unsqueeze(0);
        const at::Tensor expected = aviary::find_tensor(g, "logits_seq")->select(0, -1);
        for (int64_t chunk : {256, 5}) {
            for (int threads : {1, 2}) {
                CpuEngineOptions eo;
                eo.prefill_chunk = chunk;
                eo.threads = threads;
                CpuEngine engine(model, eo);
                State state = model.new_state(1);
                const at::Tensor logits = engine.prefill(tokens, state).squeeze(0);
                const std::string what =
                    name + " chunk " + std::to_string(chunk) + " threads " + std::to_string(threads);
                EXPECT_TRUE(rel_close(logits, expected, 1e-4)) << what;
                for (int l = 0; l < model.config().n_layer; ++l) {
                    const std::string p = "state." + std::to_string(l) + ".";
                    EXPECT_TRUE(rel_close(state.wkv[l].squeeze(0), *aviary::find_tensor(g, p + "wkv"), 1e-4)) << what;
                    EXPECT_TRUE(
                        rel_close(state.att_shift[l].squeeze(0), *aviary::find_tensor(g, p + "att_shift"), 1e-4))
                        << what;
                    EXPECT_TRUE(
                        rel_close(state.ffn_shift[l].squeeze(0), *aviary::find_tensor(g, p + "ffn_shift"), 1e-4))
                        << what;
                }
            }
        }
    }
}

// Prefill == LibTorch's sequence mode (Model::forward) on random official-like weights with strong LoRAs: batch 1
// and 3, from a non-zero state, prompts longer than one block, fp32 (1e-5); bf16 / int8 against the fp32 model
// of their rounded weights (as the step tests). Blocks of 16 tokens and of 48 (>= 32 rows: the decay LoRA's first
// matrix, 64 rows, is then split by tokens between the 2 threads, not by its rows).
TEST_P(CpuEngineVersion, PrefillMatchesModelForward) {
    const int version = GetParam();
    const aviary::TensorList w = random_tensors(version);
    Model model = Model::from_tensors(w);
    const int64_t V = model.config().vocab_size;
    for (int64_t batch : {1, 3}) {
        State start = model.new_state(batch);
        model.forward(at::randint(1, V, {batch, 4}, at::detail::createCPUGenerator(2), at::kLong), start, false);
        const at::Tensor prompt = at::randint(0, V, {batch, 37}, at::detail::createCPUGenerator(8 + batch), at::kLong);
        State ref = start.clone();
        const at::Tensor want = model.forward(prompt, ref, false);
        for (const int64_t chunk : {int64_t(16), int64_t(48)}) {
            CpuEngineOptions eo;
            eo.prefill_chunk = chunk;
            eo.threads = 2;
            CpuEngine engine(model, eo);
            State got = start.clone();
            const at::Tensor have = engine.prefill(prompt, got);
            const std::string what =
                "v" + std::to_string(version) + " batch " + std::to_string(batch) + " chunk " + std::to_string(chunk);
            ASSERT_TRUE(rel_close(have, want, 1e-5)) << what;
            expect_states_close(got, ref, 1e-5, what);
        }
    }
    // The at::mm_out fallback of the GEMM blocks (a BLAS without cblas_sgemm) computes the same prefill.
    {
        setenv("AVIARY_PREFILL_GEMM", "libtorch", 1);
        CpuEngineOptions eo;
        eo.prefill_chunk = 32;
        eo.threads = 2;
        CpuEngine engine(model, eo);
        unsetenv("AVIARY_PREFILL_GEMM");
        State start = model.new_state(2), ref = start.clone(), got = start.clone();
        const at::Tensor prompt = at::randint(0, V, {2, 45}, at::detail::createCPUGenerator(6), at::kLong);
        const at::Tensor want = model.forward(prompt, ref, false), have = engine.prefill(prompt, got);
        ASSERT_TRUE(rel_close(have, want, 1e-5)) << "at::mm_out fallback";
        expect_states_close(got, ref, 1e-5, "at::mm_out fallback");
    }
    // Prefill runs the BLAS single-threaded inside (its own pool splits the GEMMs) and gives the count back.
    const int blas_threads = aviary::thread_count();
    aviary::set_thread_count(2);
    {
        CpuEngineOptions eo;
        eo.threads = 2;
        CpuEngine engine(model, eo);
        State st = model.new_state(1);
        engine.prefill(at::randint(0, V, {1, 9}, at::detail::createCPUGenerator(5), at::kLong), st);
        EXPECT_EQ(aviary::thread_count(), 2);
    }
    aviary::set_thread_count(blas_threads);
    const aviary::TensorList rounded_int8 = aviary::dequantize_checkpoint_int8(aviary::quantize_checkpoint_int8(w));
    aviary::TensorList rounded_bf16;
    for (const auto& nt : w)
        rounded_bf16.push_back(
            {nt.name, aviary::is_matrix_weight(nt.name) ? nt.tensor.to(at::kBFloat16).to(at::kFloat) : nt.tensor});
    const at::Tensor prompt = at::randint(0, V, {2, 37}, at::detail::createCPUGenerator(4), at::kLong);
    for (const std::string dtype : {"bf16", "int8"}) {
        Model reference = Model::from_tensors(dtype == "bf16" ? rounded_bf16 : rounded_int8);
        for (const int64_t chunk : {int64_t(8), int64_t(48)}) {
            CpuEngineOptions eo;
            eo.dtype = dtype;
            eo.prefill_chunk = chunk;
            eo.threads = 2;
            eo.prefill_gemm = "blas";  // the reference path (oneDNN's rounds activations too: test_cpu_gemm.cpp)
            CpuEngine engine(model, eo);
            State ref = reference.new_state(2), got = model.new_state(2);
            const at::Tensor want = reference.forward(prompt, ref, false), have = engine.prefill(prompt, got);
            const double tol = dtype == "int8" ? 5e-4 : 1e-5;  // the int8 head rounds its input to int16 codes
            const std::string what = dtype + " chunk " + std::to_string(chunk);
            ASSERT_TRUE(rel_close(have, want, tol)) << what;
            expect_states_close(got, ref, tol, what);
        }
    }
}

// Every GEMM path the engine can take here, 2 threads against 1: with 2, a matrix with fewer than 64 rows per thread
// (here the decay LoRA's first, 64 rows) is split between the threads by tokens, and the other matrices by rows; with
// 1, each is one product. Same model, same path, so the prefill's logits and states agree to the products' rounding
// (1e-5), whichever way they were cut.
TEST(CpuEnginePrefill, ShortMatricesSplitByTokensComputeTheSamePrefill) {
    Model model = random_model(6, 2, 128, 300, 21);
    const int64_t V = model.config().vocab_size;
    const at::Tensor prompt = at::randint(0, V, {1, 45}, at::detail::createCPUGenerator(9), at::kLong);
    const aviary::cpu::OneDnnInfo& dnn = aviary::cpu::onednn_info();
    std::vector<std::pair<std::string, std::string>> paths = {
        {"fp32", "blas"}, {"fp32", "libtorch"}, {"bf16", "blas"}, {"int8", "blas"}};
    if (dnn.bf16_supported) paths.emplace_back("bf16", "onednn");  // its fp32 LoRAs on oneDNN's fp32 kernels too
    if (dnn.int8_supported) paths.emplace_back("int8", "onednn");
    for (const auto& [dtype, path] : paths) {
        State one_state = model.new_state(1), two_state = model.new_state(1);
        at::Tensor logits[2];
        for (int threads : {1, 2}) {
            CpuEngineOptions eo;
            eo.dtype = dtype;
            eo.threads = threads;
            eo.prefill_chunk = 64;
            eo.prefill_gemm = path;
            CpuEngine engine(model, eo);
            logits[threads - 1] = engine.prefill(prompt, threads == 1 ? one_state : two_state);
        }
        const std::string what = dtype + " on " + path;
        std::printf("[ info ] prefill %s: 1 vs 2 threads\n", what.c_str());
        ASSERT_TRUE(rel_close(logits[1], logits[0], 1e-5)) << what;
        expect_states_close(two_state, one_state, 1e-5, what);
    }
}

// prefill_embeddings (VisualRWKV's prompts: embedding rows, image patches reversed around odd layers) against
// Model::forward_embeddings with the same flip as a block hook, fp32 (blas path) and bf16 on the default path;
// without a flip it equals the token prefill of the same rows.
TEST(CpuEnginePrefill, EmbeddingRowsWithTheOddLayerFlip) {
    Model model = random_model(6, 4, 128, 300, 12);
    const int64_t D = model.config().n_embd, T = 37, begin = 5, count = 20;
    const at::Tensor x = at::randn({1, T, D}, at::detail::createCPUGenerator(8));
    const Model::BlockHook flip = [&](int layer, const at::Tensor& h, bool) -> at::Tensor {
        if (layer % 2 == 0) return h;
        return at::cat({h.slice(1, 0, begin), h.slice(1, begin, begin + count).flip({1}), h.slice(1, begin + count)},
                       1);
    };
    State ref = model.new_state(1);
    const at::Tensor want = model.forward_embeddings(x, ref, false, flip);
    for (const int64_t chunk : {int64_t(8), int64_t(256)}) {  // a flipped prompt runs as one block whatever the chunk
        CpuEngineOptions eo;
        eo.prefill_chunk = chunk;
        eo.prefill_gemm = "blas";
        CpuEngine engine(model, eo);
        State got = model.new_state(1);
        EXPECT_TRUE(rel_close(engine.prefill_embeddings(x, got, begin, count), want, 1e-4)) << "chunk " << chunk;
        expect_states_close(got, ref, 1e-4, "flip chunk " + std::to_string(chunk));
    }
    // no flip == the token prefill when the rows are the tokens' embeddings
    const at::Tensor tokens = at::randint(0, 300, {1, 9}, at::detail::createCPUGenerator(3), at::kLong);
    CpuEngine engine(model);
    State a = model.new_state(1), b = model.new_state(1);
    EXPECT_TRUE(rel_close(engine.prefill_embeddings(model.embed(tokens), a), engine.prefill(tokens, b), 1e-6));
    State bad = model.new_state(1);
    EXPECT_THROW(engine.prefill_embeddings(x, bad, 30, 20), aviary::Error);  // flip range past the rows
    EXPECT_THROW(engine.prefill_embeddings(at::zeros({1, 3, D + 1}), bad), aviary::Error);
}

// aviary::prefill (what generate, chat, the studio, the music generator and bench use) runs the engine on the CPU and
// Model::forward for models the engine does not take (LoRA adapters); bad prompts are errors.
TEST(CpuEnginePrefill, FreeFunctionAndErrors) {
    Model model = random_model(6);
    const at::Tensor prompt = at::tensor({3, 1, 4, 1, 5, 9, 2, 6}, at::kLong).view({1, 8});
    State a = model.new_state(1), b = model.new_state(1);
    const at::Tensor via_engine = aviary::prefill(model, prompt, a), via_model = model.forward(prompt, b, false);
    EXPECT_TRUE(rel_close(via_engine, via_model, 1e-5));
    EXPECT_FALSE(via_engine.requires_grad());
    CpuEngine engine(model);
    State s = model.new_state(1);
    EXPECT_THROW(engine.prefill(at::tensor({1, 300}, at::kLong).view({1, 2}), s), aviary::Error);      // vocab 300
    EXPECT_THROW(engine.prefill(at::tensor({1, 2}, at::kLong), s), aviary::Error);                     // not (B, T)
    EXPECT_THROW(engine.prefill(at::zeros({1, 0}, at::kLong), s), aviary::Error);                      // empty
    EXPECT_THROW(engine.prefill(at::tensor({1, 2, 3, 4}, at::kLong).view({2, 2}), s), aviary::Error);  // batch 2 vs 1
    CpuEngineOptions eo;
    eo.prefill_chunk = 0;
    EXPECT_THROW(CpuEngine(model, eo), aviary::Error);
    Model lora = random_model(6);
    aviary::LoraOptions lo;
    lora.add_lora(lo);
    State c = lora.new_state(1), d = lora.new_state(1);
    EXPECT_TRUE(rel_close(aviary::prefill(lora, prompt, c), lora.forward(prompt, d, false), 1e-6));
}
