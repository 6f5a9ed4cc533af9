// Trainer (core/src/trainer.cpp, train_schedule.cpp, train_checkpoint.cpp,
// train_loop.cpp): official groups and schedule, L2Wrap gradient, gradients of
// both versions against central finite differences, overfitting a tiny corpus,
// bit-exact resume after a crash, crash-safe checkpoints, freezing, bad input.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "common/error_of.h"
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "aviary/core/cpu_gemm.h"
#include "aviary/core/error.h"
#include "aviary/core/glob.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/model_shapes.h"
#include "aviary/core/trainer.h"
#include "common/compare.h"

using namespace aviary;
namespace fs = std::filesystem;

namespace {

fs::path tmpdir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("aviary_trainer_test_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

Model tiny_model(int version, uint64_t seed, int D = 64, int V = 256) {
    return Model::from_tensors(init_weights(init_config(2, D, version, V), seed));
}

std::unique_ptr<TokenSource> tiny_corpus() {
    std::string text;
    for (int i = 0; i < 12; ++i) text += "the quick brown fox jumps over the lazy dog. ";
    std::vector<int32_t> ids(text.begin(), text.end());
    return make_memory_source(ids, "fox corpus");
}

LmTrainConfig small_config(const fs::path& out, int64_t steps) {
    LmTrainConfig c;
    c.out_dir = out.string();
    c.train.steps = steps;
    c.train.batch = 4;
    c.train.ctx_len = 32;
    c.train.lr = 3e-3;
    c.train.lr_final = 1e-3;
    c.train.warmup = 3;
    c.train.seed = 5;
    return c;
}

using aviary::test::error_of;

}  // namespace

TEST(Trainer, OfficialParameterGroups) {
    at::Tensor m = at::zeros({4, 4}), v = at::zeros({1, 1, 4}), hn = at::zeros({2, 64});
    EXPECT_EQ(classify_parameter("blocks.0.att.time_decay", v, 0.1), ParamGroup::Decay2x);
    EXPECT_EQ(classify_parameter("blocks.0.att.time_decay", hn, 0.1),
              ParamGroup::Decay2x);  // v5 (H, N)
    EXPECT_EQ(classify_parameter("blocks.0.att.time_decay_w1", m, 0.1),
              ParamGroup::Base);  // LoRA first
    EXPECT_EQ(classify_parameter("blocks.0.att.time_maa_w2", at::zeros({5, 32, 4}), 0.1), ParamGroup::Base);
    EXPECT_EQ(classify_parameter("blocks.0.att.time_faaaa", hn, 0.1), ParamGroup::Base);
    EXPECT_EQ(classify_parameter("blocks.0.att.time_first", hn, 0.1), ParamGroup::First3x);
    EXPECT_EQ(classify_parameter("blocks.0.att.key.weight", m, 0.1), ParamGroup::WeightDecay);
    EXPECT_EQ(classify_parameter("emb.weight", m, 0.1), ParamGroup::WeightDecay);
    EXPECT_EQ(classify_parameter("emb.weight", m, 0.0),
              ParamGroup::Base);  // no decay group without wd
    EXPECT_EQ(classify_parameter("blocks.0.ln1.weight", at::zeros({4}), 0.1), ParamGroup::Base);
    EXPECT_EQ(classify_parameter("blocks.0.att.time_state", at::zeros({2, 64, 64}), 0.1), ParamGroup::WeightDecay);
    EXPECT_EQ(group_lr_multiplier(ParamGroup::Decay2x), 2.0);
    EXPECT_EQ(group_lr_multiplier(ParamGroup::First3x), 3.0);
}

TEST(Trainer, WarmupThenCosineSchedule) {
    TrainOptions o;
    o.steps = 110, o.warmup = 10, o.lr = 1e-3, o.lr_final = 1e-4;
    EXPECT_NEAR(learning_rate(o, 0), 0.2e-3, 1e-15);  // 0.2 × lr at step 0
    EXPECT_NEAR(learning_rate(o, 5), 1e-3 * (0.2 + 0.8 * 0.5), 1e-15);
    EXPECT_NEAR(learning_rate(o, 10), 1e-3, 1e-15);
    EXPECT_NEAR(learning_rate(o, 60), 0.55e-3,
                1e-12);  // p = 0.5: (lr + lr_final) / 2
    EXPECT_NEAR(learning_rate(o, 110), 1e-4, 1e-15);
    EXPECT_NEAR(learning_rate(o, 500), 1e-4, 1e-15);
}

TEST(Trainer, GlobMatching) {
    EXPECT_TRUE(glob_match("blocks.*.att.*", "blocks.11.att.key.weight"));
    EXPECT_FALSE(glob_match("blocks.*.att.*", "blocks.1.ffn.key.weight"));
    EXPECT_TRUE(glob_match("proj.*", "proj.weight"));
    EXPECT_TRUE(glob_match("*time_decay", "blocks.0.att.time_decay"));
    EXPECT_TRUE(glob_match("emb.weigh?", "emb.weight"));
    EXPECT_FALSE(glob_match("emb", "emb.weight"));
}

TEST(Trainer, L2WrapAddsTheOfficialGradient) {
    at::manual_seed(3);
    const int64_t B = 2, T = 3, V = 7;
    at::Tensor logits = torch::randn({B, T, V}).set_requires_grad(true);
    at::Tensor targets = torch::randint(V, {B, T});
    lm_loss(logits, targets, {}, false).backward();
    at::Tensor g_plain = logits.grad().clone();
    logits.grad().zero_();
    at::Tensor loss = lm_loss(logits, targets, {}, true);
    EXPECT_EQ(loss.item<double>(), lm_loss(logits, targets, {}, false).item<double>());  // value unchanged
    loss.backward();
    at::Tensor expect = g_plain.clone();
    auto [mx, ids] = logits.detach().max(-1, true);
    expect.scatter_add_(-1, ids, mx * (1e-4 / double(B * T)));
    EXPECT_TRUE(aviary::test::rel_close(logits.grad(), expect, 1e-6));
    EXPECT_GT((logits.grad() - g_plain).abs().max().item<double>(), 0);
}

TEST(Trainer, LossMaskSelectsPositions) {
    at::manual_seed(4);
    at::Tensor logits = torch::randn({1, 4, 5}), targets = torch::randint(5, {1, 4});
    at::Tensor mask = torch::tensor({1, 0, 1, 0}).reshape({1, 4});
    at::Tensor full = torch::nn::functional::cross_entropy(
        logits[0], targets[0], torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    const double want = (full[0].item<double>() + full[2].item<double>()) / 2;
    EXPECT_NEAR(lm_loss(logits, targets, mask, false).item<double>(), want, 1e-6);
}

// d/dε L(θ + ε·d) by central differences (step h, fp32 model) against the
// autograd directional derivative ⟨∇L, d⟩.
class FiniteDifference : public ::testing::TestWithParam<int> {};

TEST_P(FiniteDifference, GradientsMatchCentralDifferences) {
    const int version = GetParam();
    ModelConfig c = init_config(2, 64, version, 32);
    for (WkvImpl impl : {WkvImpl::Reference, WkvImpl::Chunked}) {
        ModelOptions mo;
        mo.wkv = impl;
        mo.wkv_chunk = 3;  // T = 8: two full chunks and a partial one
        Model model = Model::from_tensors(random_weights(c, 11), mo);
        model.train(true);
        at::manual_seed(12);
        at::Tensor tokens = torch::randint(32, {2, 9});
        at::Tensor x = tokens.narrow(1, 0, 8), y = tokens.narrow(1, 1, 8);
        auto loss_fn = [&] {
            State s = model.new_state(2);
            return lm_loss(model.forward(x, s, true), y, {}, false);
        };
        for (auto& p : model.state_dict())
            if (p.tensor.grad().defined()) p.tensor.grad().zero_();
        loss_fn().backward();
        std::vector<std::string> names = {"blocks.0.att.time_decay", "blocks.1.att.time_faaaa",
                                          "blocks.0.att.key.weight", "blocks.1.ffn.value.weight", "emb.weight"};
        if (version == 6) {
            names.push_back("blocks.0.att.time_maa_w1");
            names.push_back("blocks.1.att.time_decay_w1");
            names.push_back("blocks.0.att.time_maa_w2");
        } else {
            names.push_back("blocks.0.att.time_mix_k");
        }
        // fp32 central differences: roundoff ≈ 1e−7·|L|/h ≈ 1e−4, truncation O(h²)
        // (≈ 0.5 % at h = 3e−3 for u).
        const double h = std::getenv("AVIARY_TEST_H") ? std::atof(std::getenv("AVIARY_TEST_H")) : 3e-3;
        for (const auto& name : names) {
            at::Tensor p = *find_tensor(model.state_dict(), name);
            at::Tensor g = p.grad().clone();
            // Direction: the gradient's plus a random one (unit norms), so that the
            // change of L stays well above fp32 roundoff even for parameters with
            // small gradients, and components off the gradient count too.
            at::Tensor rnd = torch::randn(p.sizes());
            at::Tensor d = g / g.norm() + rnd / rnd.norm();
            d = d / d.norm();
            const double analytic = (g * d).sum().item<double>();
            double lp, lm;
            {
                torch::NoGradGuard ng;
                p.add_(d * h);
                lp = loss_fn().item<double>();
                p.sub_(d * (2 * h));
                lm = loss_fn().item<double>();
                p.add_(d * h);
            }
            const double fd = (lp - lm) / (2 * h);
            if (std::getenv("AVIARY_TEST_VERBOSE"))
                std::printf("v%d %-9s %-28s fd %+.6e analytic %+.6e\n", version, wkv_impl_name(impl), name.c_str(), fd,
                            analytic);
            EXPECT_NEAR(fd, analytic, 1e-2 * std::abs(analytic) + 1e-4)
                << "v" << version << " " << wkv_impl_name(impl) << " " << name << " fd " << fd << " analytic "
                << analytic;
        }
        model.train(false);
    }
}
INSTANTIATE_TEST_SUITE_P(BothVersions, FiniteDifference, ::testing::Values(5, 6));

TEST(Trainer, TwoLayerModelOverfitsATinyCorpus) {
    Model model = tiny_model(6, 1);
    auto data = tiny_corpus();
    LmTrainConfig c = small_config(tmpdir("overfit"), 60);
    TrainSummary s = train_language_model(model, *data, c);
    ASSERT_EQ(s.losses.size(), 60u);
    EXPECT_GT(s.losses.front(), 5.0);  // ≈ ln 256
    EXPECT_LT(s.losses.back(), 1.0) << "final loss " << s.losses.back();
    // Log: one JSON line per step; the final weights load with official names.
    std::ifstream log(fs::path(c.out_dir) / "train_log.jsonl");
    int lines = 0;
    for (std::string l; std::getline(log, l);) {
        ++lines;
        EXPECT_NE(l.find("\"tokens_per_s\""), std::string::npos);
    }
    EXPECT_EQ(lines, 60);
    Model reloaded = Model::load(s.final_model);
    EXPECT_EQ(reloaded.config().n_layer, 2);
}

TEST(Trainer, ResumeAfterACrashIsBitExact) {
    auto data = tiny_corpus();
    // Uninterrupted: 20 steps.
    Model a = tiny_model(5, 2);
    LmTrainConfig ca = small_config(tmpdir("resume_a"), 20);
    ca.train.weight_decay = 0.01;  // exercise the decay group too
    TrainSummary sa = train_language_model(a, *data, ca);
    // Interrupted: checkpoints every 5 steps, a crash in step 12 (after the
    // step-10 checkpoint), then resume.
    Model b = tiny_model(5, 2);
    LmTrainConfig cb = ca;
    cb.out_dir = tmpdir("resume_b").string();
    cb.save_every = 5;
    TrainCallbacks crash;
    crash.on_progress = [](const TrainProgress& p) {
        if (p.step == 12) throw std::runtime_error("simulated crash");
        return true;
    };
    EXPECT_THROW(train_language_model(b, *data, cb, crash), std::runtime_error);
    Model b2 = tiny_model(5, 99);  // different weights: all must come from the checkpoint
    cb.resume = true;
    TrainSummary sb = train_language_model(b2, *data, cb);
    EXPECT_EQ(sb.start_step, 10);
    ASSERT_EQ(sb.losses.size(), 10u);
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ(sb.losses[i], sa.losses[10 + i]) << "step " << 11 + i;
    auto wa = a.state_dict(), wb = b2.state_dict();
    for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(at::equal(wa[i].tensor, wb[i].tensor)) << wa[i].name;
    // The log of the resumed run has steps 1..20 once each.
    std::ifstream log(fs::path(cb.out_dir) / "train_log.jsonl");
    int lines = 0;
    for (std::string l; std::getline(log, l);) ++lines;
    EXPECT_EQ(lines, 20);
    // The default precision (bf16 on a CPU with AMX-BF16) resumes exactly too, and trainer.json names it.
    const std::string want = train_precision_name(resolve_train_precision(TrainPrecision::Auto, true));
    EXPECT_EQ(sb.precision, resolve_train_precision(TrainPrecision::Auto, true));
    std::ifstream meta(fs::path(latest_train_checkpoint(cb.out_dir)) / "trainer.json");
    const std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("\"precision\": \"" + want + "\""), std::string::npos) << text;
}

TEST(Trainer, FailedCheckpointWriteKeepsTheLastGoodOne) {
    auto data = tiny_corpus();
    Model m = tiny_model(6, 3);
    LmTrainConfig c = small_config(tmpdir("crashsave"), 10);
    c.save_every = 5;
    TrainCallbacks cb;
    cb.on_progress = [](const TrainProgress& p) {
        if (p.step == 7) set_checkpoint_failure_for_testing(1);  // the step-10 save dies after its first file
        return true;
    };
    EXPECT_THROW(train_language_model(m, *data, c, cb), Error);
    // A killed writer may also leave a temporary directory and a step directory
    // without trainer.json.
    fs::create_directories(fs::path(c.out_dir) / "checkpoints" / ".tmp-step-00000011-1");
    fs::create_directories(fs::path(c.out_dir) / "checkpoints" / "step-00000012");
    const std::string latest = latest_train_checkpoint(c.out_dir);
    EXPECT_EQ(fs::path(latest).filename().string(), "step-00000005");
    Model fresh = tiny_model(6, 3);
    fresh.train(true);
    Trainer t(fresh.state_dict(), c.train);
    CheckpointInfo info = load_train_checkpoint(latest, fresh, t);
    EXPECT_EQ(info.step, 5);
    EXPECT_EQ(info.data_position, 5 * 4);
    fresh.train(false);
}

// load_train_checkpoint_bytes is load_train_checkpoint on the three files' bytes: the same step, weights and optimizer
// state, or the same error (naming the checkpoint or its file), and an error names whatever directory it is given.
TEST(Trainer, CheckpointBytesLoadLikeTheFiles) {
    auto make_weights = [] {
        at::manual_seed(11);
        return TensorList{{"emb.weight", at::randn({8, 4}).set_requires_grad(true)},
                          {"blocks.0.ln1.weight", at::ones({4}).set_requires_grad(true)}};
    };
    TrainOptions options;
    options.precision = TrainPrecision::Fp32;
    const fs::path out = tmpdir("checkpoint_bytes");
    {
        TensorList w = make_weights();
        Trainer t(w, options);
        t.step([&](int64_t) { return (w[0].tensor * w[0].tensor).sum() + w[1].tensor.sum(); });  // optimizer state
        CheckpointInfo info;
        info.step = 3;
        info.data_position = 12;
        info.loss = 1.5;
        save_train_checkpoint(out.string(), w, "{\"n_layer\": 1}", t, info, 2);
    }
    const fs::path dir = latest_train_checkpoint(out.string());
    auto read = [](const fs::path& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    const std::string json = read(dir / "trainer.json"), model = read(dir / "model.safetensors"),
                      optimizer = read(dir / "optimizer.safetensors");
    const std::string other_model = [&] {
        const fs::path other = tmpdir("checkpoint_bytes_other");
        TensorList w{{"emb.weight", at::zeros({9, 4}).set_requires_grad(true)},
                     {"blocks.0.ln1.weight", at::ones({4}).set_requires_grad(true)}};
        Trainer t(w, options);
        save_train_checkpoint(other.string(), w, "{}", t, CheckpointInfo{}, 1);
        return read(fs::path(latest_train_checkpoint(other.string())) / "model.safetensors");
    }();
    std::string step_text = json;
    step_text.replace(step_text.find("\"step\": 3"), 9, "\"step\": \"3\"");
    const std::string cases[][3] = {{json, model, optimizer},
                                    {step_text, model, optimizer},
                                    {"{not json", model, optimizer},
                                    {json, model.substr(0, model.size() - 3), optimizer},
                                    {json, other_model, optimizer},
                                    {json, model, optimizer.substr(0, 20)},
                                    {json, model, ""}};
    const fs::path copy = out / "copy";
    size_t refused = 0;
    for (size_t i = 0; i < std::size(cases); ++i) {
        SCOPED_TRACE(i);
        fs::create_directories(copy);
        const char* names[3] = {"trainer.json", "model.safetensors", "optimizer.safetensors"};
        for (int k = 0; k < 3; ++k) std::ofstream(copy / names[k], std::ios::binary | std::ios::trunc) << cases[i][k];
        TensorList w_file = make_weights(), w_bytes = make_weights();
        Trainer t_file(w_file, options), t_bytes(w_bytes, options);
        TrainCheckpointBytes files;
        files.trainer_json = cases[i][0];
        files.model = cases[i][1];
        files.optimizer = cases[i][2];
        CheckpointInfo from_file, from_bytes;
        const std::string file_error =
            error_of([&] { from_file = load_train_checkpoint(copy.string(), w_file, t_file); });
        const std::string bytes_error =
            error_of([&] { from_bytes = load_train_checkpoint_bytes(files, copy.string(), w_bytes, t_bytes); });
        EXPECT_EQ(bytes_error, file_error);
        EXPECT_EQ(from_bytes.step, from_file.step);
        EXPECT_EQ(from_bytes.data_position, from_file.data_position);
        EXPECT_EQ(from_bytes.loss, from_file.loss);
        EXPECT_EQ(from_bytes.path, from_file.path);
        for (size_t k = 0; k < w_file.size(); ++k) EXPECT_TRUE(at::equal(w_bytes[k].tensor, w_file[k].tensor));
        const TensorList s_file = t_file.optimizer_state(), s_bytes = t_bytes.optimizer_state();
        ASSERT_EQ(s_bytes.size(), s_file.size());
        for (size_t k = 0; k < s_file.size(); ++k) EXPECT_TRUE(at::equal(s_bytes[k].tensor, s_file[k].tensor));
        if (file_error == "(no error)") {
            EXPECT_EQ(from_file.step, 3);
            EXPECT_FALSE(s_file.empty());
            continue;
        }
        ++refused;
        EXPECT_NE(file_error.find(copy.string()), std::string::npos) << file_error;
        const std::string error =
            error_of([&] { load_train_checkpoint_bytes(files, "memory/step-3", w_bytes, t_bytes); });
        EXPECT_NE(error.find("memory/step-3"), std::string::npos) << error;
    }
    EXPECT_EQ(refused, std::size(cases) - 1);
}

// Rotation used to delete an old checkpoint in place, file by file: a kill in between left a step-* directory with
// trainer.json but without a weights file, which readers take as complete. Now the directory is renamed to .tmp-*
// first; the hook stops the removal after one file as a kill would.
TEST(Trainer, InterruptedRotationNeverLeavesAPartialCheckpoint) {
    auto data = tiny_corpus();
    Model m = tiny_model(6, 7);
    LmTrainConfig c = small_config(tmpdir("rotate_killed"), 6);
    c.save_every = 1;
    c.keep_last = 1;
    TrainCallbacks cb;
    cb.on_progress = [](const TrainProgress& p) {
        if (p.step == 4) set_checkpoint_removal_failure_for_testing(1);  // rotating after the step-4 save
        return true;
    };
    EXPECT_THROW(train_language_model(m, *data, c, cb), Error);
    const fs::path root = fs::path(c.out_dir) / "checkpoints";
    int complete = 0;
    for (const auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("step-", 0) != 0) continue;
        for (const char* file : {"trainer.json", "model.safetensors", "optimizer.safetensors"})
            EXPECT_TRUE(fs::exists(e.path() / file)) << name << " lacks " << file;
        ++complete;
    }
    EXPECT_GE(complete, 1);
    EXPECT_EQ(fs::path(latest_train_checkpoint(c.out_dir)).filename().string(), "step-00000004");
    // The resumed run finishes, and the half-removed directory is gone.
    Model r = tiny_model(6, 8);
    c.resume = true;
    EXPECT_EQ(train_language_model(r, *data, c).start_step, 4);
    for (const auto& e : fs::directory_iterator(root))
        EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
}

// LibTorch seeds its global CPU generator from /dev/urandom, and checkpoints store that generator: two runs with the
// same seed wrote different optimizer.safetensors (tools/kill_resume.py: 'rng/torch_cpu' differs), and anything that
// drew from it would have differed too. A run now seeds it from the training seed.
TEST(Trainer, CheckpointRngStateIsAFunctionOfTheSeed) {
    auto data = tiny_corpus();
    auto rng_of = [](const LmTrainConfig& c) {
        const TensorList opt =
            read_safetensors((fs::path(latest_train_checkpoint(c.out_dir)) / "optimizer.safetensors").string());
        const at::Tensor* t = find_tensor(opt, "rng/torch_cpu");
        EXPECT_NE(t, nullptr);
        return t ? t->clone() : at::Tensor();
    };
    Model a = tiny_model(6, 9);
    LmTrainConfig ca = small_config(tmpdir("rng_a"), 3);
    train_language_model(a, *data, ca);
    (void)at::rand({1000});  // the global generator moves on between the two runs
    at::manual_seed(12345);
    Model b = tiny_model(6, 9);
    LmTrainConfig cb = small_config(tmpdir("rng_b"), 3);
    train_language_model(b, *data, cb);
    const at::Tensor ra = rng_of(ca), rb = rng_of(cb);
    ASSERT_TRUE(ra.defined() && rb.defined());
    EXPECT_TRUE(at::equal(ra, rb)) << "the checkpoints' RNG states differ for the same seed";
    // …and a different seed gives a different state.
    Model d = tiny_model(6, 9);
    LmTrainConfig cd = small_config(tmpdir("rng_d"), 3);
    cd.train.seed = 6;
    train_language_model(d, *data, cd);
    EXPECT_FALSE(at::equal(ra, rng_of(cd)));
}

// What a SIGKILL leaves — a log line cut mid-write, steps logged after the newest checkpoint, an AtomicFile
// temporary of the final model, a half-written checkpoint directory — is gone after the resumed run, and the log
// holds each step once.
TEST(Trainer, ResumeClearsWhatAKillLeft) {
    auto data = tiny_corpus();
    Model m = tiny_model(6, 10);
    LmTrainConfig c = small_config(tmpdir("killed_leftovers"), 5);
    c.save_every = 2;
    TrainCallbacks cb;
    cb.on_progress = [](const TrainProgress& p) {
        if (p.step == 3) throw std::runtime_error("simulated kill");  // after the step-2 checkpoint, step 3 logged
        return true;
    };
    EXPECT_THROW(train_language_model(m, *data, c, cb), std::runtime_error);
    const fs::path out(c.out_dir);
    std::ofstream(out / "train_log.jsonl", std::ios::app) << "{\"step\": 4, \"lo";
    std::ofstream(out / ".model.safetensors.tmp-Qw3rTy") << "half a model";
    std::ofstream(out / ".notes.tmp-keep") << "not an AtomicFile temporary: kept";
    fs::create_directories(out / "checkpoints" / ".tmp-step-00000004-77");
    Model r = tiny_model(6, 11);
    c.resume = true;
    EXPECT_EQ(train_language_model(r, *data, c).start_step, 2);
    EXPECT_FALSE(fs::exists(out / ".model.safetensors.tmp-Qw3rTy"));
    EXPECT_FALSE(fs::exists(out / "checkpoints" / ".tmp-step-00000004-77"));
    EXPECT_TRUE(fs::exists(out / ".notes.tmp-keep"));
    std::ifstream log(out / "train_log.jsonl");
    std::vector<int64_t> steps;
    for (std::string l; std::getline(log, l);) {
        const auto j = nlohmann::json::parse(l, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << "a cut line was kept: " << l;
        steps.push_back(j["step"].get<int64_t>());
    }
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(Trainer, KeepsLastNPlusBest) {
    auto data = tiny_corpus();
    Model m = tiny_model(6, 4);
    LmTrainConfig c = small_config(tmpdir("rotate"), 8);
    c.save_every = 1;
    c.keep_last = 2;
    train_language_model(m, *data, c);
    int n = 0;
    for (auto& e : fs::directory_iterator(fs::path(c.out_dir) / "checkpoints")) n += e.is_directory();
    EXPECT_LE(n, 3);
    EXPECT_GE(n, 2);
    EXPECT_EQ(fs::path(latest_train_checkpoint(c.out_dir)).filename().string(), "step-00000008");
}

TEST(Trainer, FreezingByGlobKeepsThoseWeights) {
    auto data = tiny_corpus();
    Model m = tiny_model(6, 5);
    TensorList before;
    for (auto& p : m.state_dict()) before.push_back({p.name, p.tensor.detach().clone()});
    LmTrainConfig c = small_config(tmpdir("freeze"), 3);
    c.train.freeze = {"blocks.*.att.*", "emb.*"};
    train_language_model(m, *data, c);
    for (auto& p : m.state_dict()) {
        const bool frozen = glob_match("blocks.*.att.*", p.name) || p.name == "emb.weight";
        const bool same = at::equal(p.tensor, *find_tensor(before, p.name));
        if (frozen) {
            EXPECT_TRUE(same) << p.name;
        }
    }
    EXPECT_FALSE(at::equal(*find_tensor(m.state_dict(), "blocks.0.ffn.key.weight"),
                           *find_tensor(before, "blocks.0.ffn.key.weight")));
    c.train.freeze = {"nothing.*"};
    EXPECT_NE(error_of([&] { train_language_model(m, *data, c); }).find("matches no parameter"), std::string::npos);
}

TEST(Trainer, AccumulationEqualsALargerBatch) {
    auto data = tiny_corpus();
    Model a = tiny_model(6, 6), b = tiny_model(6, 6);
    LmTrainConfig ca = small_config(tmpdir("accum_a"), 2), cb = small_config(tmpdir("accum_b"), 2);
    ca.train.batch = 4;
    cb.train.batch = 2, cb.train.grad_accum = 2;
    // fp32: the identity is exact arithmetic (bf16 rounds each micro-batch's weight gradients on their own)
    ca.train.precision = cb.train.precision = TrainPrecision::Fp32;
    TrainSummary sa = train_language_model(a, *data, ca), sb = train_language_model(b, *data, cb);
    EXPECT_NEAR(sa.losses[1], sb.losses[1], 1e-5);
    EXPECT_TRUE(aviary::test::rel_close(*find_tensor(b.state_dict(), "blocks.1.att.key.weight"),
                                        *find_tensor(a.state_dict(), "blocks.1.att.key.weight"), 1e-4));
}

TEST(Trainer, BadInputGivesClearErrors) {
    // Token ids beyond the model's vocabulary.
    Model m = tiny_model(6, 7, 64, 256);
    auto wide = make_memory_source(std::vector<int32_t>(100, 300), "wide ids");
    LmTrainConfig c = small_config(tmpdir("bad"), 2);
    EXPECT_NE(error_of([&] { train_language_model(m, *wide, c); }).find("token id 300"), std::string::npos);
    // Resuming a checkpoint of another model shape.
    auto data = tiny_corpus();
    train_language_model(m, *data, c);
    Model other = tiny_model(6, 7, 128, 256);
    c.resume = true;
    const std::string err = error_of([&] { train_language_model(other, *data, c); });
    EXPECT_NE(err.find("another model"), std::string::npos) << err;
    // Data smaller than one window.
    auto small = make_memory_source({1, 2, 3}, "three tokens");
    c.resume = false;
    EXPECT_NE(error_of([&] { train_language_model(m, *small, c); }).find("too small"), std::string::npos);
}

// Training precision (trainer.h TrainPrecision): names, and the default (bf16 where its products are faster).
TEST(Trainer, PrecisionNamesAndDefault) {
    EXPECT_EQ(parse_train_precision("bf16"), TrainPrecision::Bf16);
    EXPECT_EQ(parse_train_precision("fp32"), TrainPrecision::Fp32);
    EXPECT_EQ(parse_train_precision("auto"), TrainPrecision::Auto);
    EXPECT_NE(error_of([] { parse_train_precision("fp16"); }).find("expected bf16, fp32 or auto"), std::string::npos);
    EXPECT_STREQ(train_precision_name(TrainPrecision::Bf16), "bf16");
    const TrainPrecision def = resolve_train_precision(TrainPrecision::Auto, /*parameters_on_cpu=*/true);
    // bf16 by default exactly where its products are the faster ones here: AMX-BF16, or the measured AVX512-BF16 case
    const bool faster = cpu_has_amx_bf16() || aviary::cpu::bf16_gemm_rates().onednn_faster;
    EXPECT_EQ(bf16_training_faster(), faster);
    EXPECT_EQ(def, faster ? TrainPrecision::Bf16 : TrainPrecision::Fp32);
    std::printf("[ info ] AMX-BF16: %s, bf16 products measured faster: %s, default training precision: %s\n",
                cpu_has_amx_bf16() ? "yes" : "no", aviary::cpu::bf16_gemm_rates().onednn_faster ? "yes" : "no",
                train_precision_name(def));
    EXPECT_EQ(resolve_train_precision(TrainPrecision::Auto, false), TrainPrecision::Fp32);
    EXPECT_EQ(resolve_train_precision(TrainPrecision::Fp32, true), TrainPrecision::Fp32);
    EXPECT_NE(error_of([] { resolve_train_precision(TrainPrecision::Bf16, false); }).find("--precision fp32"),
              std::string::npos);
}

// Under bf16 training's autocast the layer and group norms run in fp32 (trainer.cpp's AutocastCPU kernels): a bf16
// input with fp32 affine weights gives exactly the fp32 norm of the same values (LibTorch 1.13 alone rejects the
// mixed dtypes); outside autocast nothing changes.
TEST(Trainer, NormsRunInFp32UnderBf16Autocast) {
    torch::manual_seed(3);
    const at::Tensor x = (torch::randn({4, 6, 32}) * 3 + 1).to(at::kBFloat16);
    const at::Tensor w = torch::randn({32}), b = torch::randn({32});
    const at::Tensor ln_ref = at::layer_norm(x.to(at::kFloat), {32}, w, b, 1e-5);
    const at::Tensor gn_ref = at::group_norm(x.to(at::kFloat).reshape({24, 32}), 4, w, b, 64e-5);
    at::Tensor ln, gn;
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    try {
        ln = at::layer_norm(x, {32}, w, b, 1e-5);
        gn = at::group_norm(x.reshape({24, 32}), 4, w, b, 64e-5);
    } catch (...) {
        at::autocast::set_cpu_enabled(false);
        throw;
    }
    at::autocast::set_cpu_enabled(false);
    EXPECT_EQ(ln.scalar_type(), at::kFloat);
    EXPECT_EQ(gn.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(ln, ln_ref));
    EXPECT_TRUE(at::equal(gn, gn_ref));
}

// One bf16 training step (autocast; fp32 master weights, WKV and loss) against the fp32 step on the same tiny
// model and batch, for RWKV-4, Eagle and Finch. Tolerances (measured on AMX: loss 1e-5, gradients 3e-3, about one
// bf16 rounding): loss |bf16 − fp32| / fp32 < 2e-3; the gradient of all parameters as one vector at cosine > 0.999
// and relative L2 error ‖g_bf16 − g_fp32‖ / ‖g_fp32‖ < 3e-2; each parameter whose gradient holds at least 0.1 % of the
// total norm at cosine > 0.99. bf16 runs on any CPU (without native units LibTorch emulates it, slowly).
class Bf16Step : public ::testing::TestWithParam<int> {};

TEST_P(Bf16Step, LossAndGradientsMatchFp32) {
    const int version = GetParam();
    auto data = tiny_corpus();
    WindowSampler sampler(*data, 32, 5);
    const at::Tensor w = sampler.windows(0, 4);  // (4, 33)
    struct Run {
        double loss = 0;
        TensorList grads;
        TrainPrecision precision = TrainPrecision::Auto;
    };
    auto run = [&](TrainPrecision precision) {
        Model m = tiny_model(version, 11);
        m.train(true);
        TrainOptions o;
        o.steps = 1, o.batch = 4, o.ctx_len = 32, o.warmup = 0, o.grad_clip = 0;  // no clipping: raw gradients
        o.precision = precision;
        Trainer t(m.state_dict(), o);
        Run out;
        out.loss = t.step([&](int64_t) {
                        State s = m.new_state(4);
                        at::Tensor logits = m.forward(w.narrow(1, 0, 32), s, /*all_logits=*/true);
                        return lm_loss(logits, w.narrow(1, 1, 32), {}, /*use_l2wrap=*/true);
                    }).loss;
        out.precision = t.options().precision;
        for (const auto& nt : t.trainable())
            out.grads.push_back({nt.name, nt.tensor.grad().detach().to(at::kDouble).flatten().clone()});
        m.train(false);
        return out;
    };
    const Run f = run(TrainPrecision::Fp32), b = run(TrainPrecision::Bf16);
    ASSERT_EQ(f.precision, TrainPrecision::Fp32);
    ASSERT_EQ(b.precision, TrainPrecision::Bf16);
    const double loss_rel = std::abs(b.loss - f.loss) / std::abs(f.loss);
    EXPECT_LT(loss_rel, 2e-3) << "fp32 " << f.loss << " bf16 " << b.loss;
    EXPECT_NE(b.loss, f.loss) << "the bf16 step computed exactly the fp32 loss: autocast did not run";
    std::vector<at::Tensor> gf, gb;
    for (size_t i = 0; i < f.grads.size(); ++i) gf.push_back(f.grads[i].tensor), gb.push_back(b.grads[i].tensor);
    const at::Tensor all_f = at::cat(gf), all_b = at::cat(gb);
    ASSERT_TRUE(all_b.isfinite().all().item<bool>());
    const double total = all_f.norm().item<double>();
    const double cos = (all_f * all_b).sum().item<double>() / (total * all_b.norm().item<double>());
    const double rel = (all_b - all_f).norm().item<double>() / total;
    EXPECT_GT(cos, 0.999);
    EXPECT_LT(rel, 3e-2);
    std::string worst;
    double worst_cos = 1;
    for (size_t i = 0; i < gf.size(); ++i) {
        const double n = gf[i].norm().item<double>();
        if (n < 1e-3 * total) continue;
        const double c = (gf[i] * gb[i]).sum().item<double>() / (n * gb[i].norm().item<double>());
        if (c < worst_cos) worst_cos = c, worst = f.grads[i].name;
        EXPECT_GT(c, 0.99) << f.grads[i].name;
    }
    std::printf("[ info ] v%d loss fp32 %.6f bf16 %.6f (rel %.2e); gradient cosine %.7f, rel L2 %.3e\n", version,
                f.loss, b.loss, loss_rel, cos, rel);
    std::printf("[ info ] v%d worst tensor %s cosine %.7f\n", version, worst.c_str(), worst_cos);
}

INSTANTIATE_TEST_SUITE_P(AllVersions, Bf16Step, ::testing::Values(4, 5, 6));

TEST(Trainer, EvaluateMatchesAFullSequencePass) {
    Model m = tiny_model(5, 8);
    auto data = tiny_corpus();
    EvalResult r = evaluate_language_model(m, *data, 16, 64);
    EXPECT_EQ(r.tokens, 64);
    std::vector<int64_t> buf(65);
    data->read(0, 65, buf.data());
    at::Tensor t = torch::tensor(buf).unsqueeze(0);
    State s = m.new_state(1);
    const double full = lm_loss(m.forward(t.narrow(1, 0, 64), s, true), t.narrow(1, 1, 64), {}, false).item<double>();
    EXPECT_NEAR(r.loss, full, 1e-4);
}
