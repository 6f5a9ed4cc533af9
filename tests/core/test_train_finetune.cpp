// Fine-tuning modes of the trainer: LoRA adapters (Model::add_lora / merge_lora / export_state_dict in
// core/src/model.cpp, the LoRA path of train_loop.cpp) and state tuning (Model::add_time_state, trainable
// time_state through the WKV's initial state). Merged and unmerged logits agree; frozen weights stay
// bit-identical; resume stays bit-exact; the exported time_state reloads to the same logits.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "common/error_of.h"
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/trainer.h"
#include "common/compare.h"

using namespace aviary;
namespace fs = std::filesystem;

namespace {

fs::path tmpdir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("aviary_finetune_test_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

Model tiny_model(int version, uint64_t seed) {
    return Model::from_tensors(init_weights(init_config(2, 64, version, 256), seed));
}

// A model that has been trained a little (the official init has zero output matrices, which would make
// LoRA on att.output/ffn.value look trivially exact).
TensorList perturbed_weights(int version, uint64_t seed) {
    TensorList w = init_weights(init_config(2, 64, version, 256), seed);
    at::manual_seed(seed + 100);
    for (auto& nt : w)
        if (nt.tensor.dim() == 2) nt.tensor = nt.tensor + 0.05 * at::randn(nt.tensor.sizes());
    return w;
}

std::unique_ptr<TokenSource> tiny_corpus() {
    std::string text;
    for (int i = 0; i < 12; ++i) text += "the quick brown fox jumps over the lazy dog. ";
    return make_memory_source(std::vector<int32_t>(text.begin(), text.end()), "fox corpus");
}

LmTrainConfig small_config(const fs::path& out, int64_t steps) {
    LmTrainConfig c;
    c.out_dir = out.string();
    c.train.steps = steps;
    c.train.batch = 4;
    c.train.ctx_len = 32;
    c.train.lr = 1e-2;
    c.train.lr_final = 1e-3;
    c.train.warmup = 0;
    c.train.seed = 7;
    return c;
}

at::Tensor tokens_for_test() {
    at::manual_seed(3);
    return at::randint(0, 256, {2, 16}, at::kLong);
}

at::Tensor logits_of(Model& m, const at::Tensor& tokens) {
    State s = m.new_state(tokens.size(0));
    return m.forward(tokens, s, true);
}

// Mean loss over fixed windows, each from the model's initial state (what state tuning changes).
double fixed_window_loss(Model& m, const TokenSource& data) {
    WindowSampler sampler(data, 32, 99);
    at::Tensor w = sampler.windows(0, 8);
    at::Tensor logits = logits_of(m, w.narrow(1, 0, 32));
    return lm_loss(logits, w.narrow(1, 1, 32), at::Tensor(), false).item<double>();
}

TensorList snapshot(const Model& m) {
    TensorList out;
    for (const auto& nt : m.state_dict()) out.push_back({nt.name, nt.tensor.detach().clone()});
    return out;
}

using aviary::test::error_of;

}  // namespace

TEST(TrainLora, MergedLogitsEqualUnmergedBothVersions) {
    for (int version : {5, 6}) {
        SCOPED_TRACE("version " + std::to_string(version));
        Model m = Model::from_tensors(perturbed_weights(version, 1));
        const at::Tensor tokens = tokens_for_test();
        const at::Tensor base = logits_of(m, tokens);
        LoraOptions lo;
        lo.rank = 4;
        lo.alpha = 8;
        lo.targets.push_back("head");
        const int adapted = m.add_lora(lo);
        EXPECT_EQ(adapted, 2 * 8 + 1);  // 5 att + 3 ffn per layer, and the head
        // B = 0 at init: exactly the base model.
        EXPECT_TRUE(at::equal(logits_of(m, tokens), base));
        // Give B values so the adapters matter.
        at::manual_seed(11);
        {
            at::NoGradGuard no_grad;
            for (auto& nt : m.lora_state_dict())
                if (nt.name.find("lora_B") != std::string::npos) nt.tensor.copy_(0.05 * at::randn(nt.tensor.sizes()));
        }
        const at::Tensor unmerged = logits_of(m, tokens);
        EXPECT_FALSE(aviary::test::rel_close(unmerged, base, 1e-3)) << "the adapters had no effect";

        // Export: official keys only, merged; loads as a plain model with the same logits.
        TensorList exported = m.export_state_dict();
        EXPECT_EQ(exported.size(), init_weights(init_config(2, 64, version, 256), 1).size());
        for (const auto& nt : exported) EXPECT_EQ(nt.name.find("lora"), std::string::npos) << nt.name;
        Model reloaded = Model::from_tensors(exported);
        EXPECT_TRUE(aviary::test::rel_close(logits_of(reloaded, tokens), unmerged, 1e-5));

        // In-place merge: adapters gone, same logits.
        m.merge_lora();
        EXPECT_FALSE(m.has_lora());
        EXPECT_TRUE(m.lora_state_dict().empty());
        EXPECT_TRUE(aviary::test::rel_close(logits_of(m, tokens), unmerged, 1e-5));
    }
}

TEST(TrainLora, TrainsOnlyAdaptersAndExportsMerged) {
    const fs::path out = tmpdir("lora");
    Model m = Model::from_tensors(perturbed_weights(6, 2));
    const TensorList before = snapshot(m);
    auto data = tiny_corpus();
    LmTrainConfig c = small_config(out, 12);
    c.lora = true;
    c.lora_options.rank = 4;
    c.lora_options.alpha = 8;
    TrainSummary s = train_language_model(m, *data, c);
    ASSERT_EQ(s.losses.size(), 12u);
    EXPECT_LT(s.losses.back(), s.losses.front() - 0.3) << "LoRA training did not reduce the loss";
    // Base weights bit-identical; adapters moved.
    for (const auto& nt : before) EXPECT_TRUE(at::equal(*find_tensor(m.state_dict(), nt.name), nt.tensor)) << nt.name;
    double b_norm = 0;
    for (const auto& nt : m.lora_state_dict())
        if (nt.name.find("lora_B") != std::string::npos) b_norm += nt.tensor.norm().item<double>();
    EXPECT_GT(b_norm, 0);
    // model.safetensors: merged, official keys, same logits as the adapted model.
    const at::Tensor tokens = tokens_for_test();
    Model exported = Model::load((out / "model.safetensors").string());
    EXPECT_TRUE(aviary::test::rel_close(logits_of(exported, tokens), logits_of(m, tokens), 1e-5));
    TensorList adapters = read_safetensors((out / "lora.safetensors").string());
    EXPECT_EQ(adapters.size(), m.lora_state_dict().size());
}

TEST(TrainLora, ResumeIsBitExact) {
    auto data = tiny_corpus();
    auto config = [](const fs::path& out, int64_t steps) {
        LmTrainConfig c = small_config(out, steps);
        c.lora = true;
        c.lora_options.rank = 4;
        c.save_every = 3;
        return c;
    };
    const fs::path full_dir = tmpdir("lora_full"), part_dir = tmpdir("lora_part");
    Model full = Model::from_tensors(perturbed_weights(6, 4));
    TrainSummary a = train_language_model(full, *data, config(full_dir, 6));

    Model first = Model::from_tensors(perturbed_weights(6, 4));
    TrainCallbacks stop_at_3;
    stop_at_3.on_progress = [](const TrainProgress& p) { return p.step < 3; };
    TrainSummary b1 = train_language_model(first, *data, config(part_dir, 6), stop_at_3);
    ASSERT_TRUE(b1.stopped);
    Model second = Model::from_tensors(perturbed_weights(6, 4));  // adapters come back from the checkpoint
    LmTrainConfig resume = config(part_dir, 6);
    resume.resume = true;
    TrainSummary b2 = train_language_model(second, *data, resume);
    ASSERT_EQ(b2.start_step, 3);
    std::vector<double> joined = b1.losses;
    joined.insert(joined.end(), b2.losses.begin(), b2.losses.end());
    ASSERT_EQ(joined.size(), a.losses.size());
    for (size_t i = 0; i < joined.size(); ++i) EXPECT_EQ(joined[i], a.losses[i]) << "step " << i + 1;
    for (const auto& nt : full.state_dict())
        EXPECT_TRUE(at::equal(*find_tensor(second.state_dict(), nt.name), nt.tensor)) << nt.name;
}

TEST(TrainLora, BadTargetsAreClearErrors) {
    Model m = tiny_model(6, 1);
    LoraOptions lo;
    lo.targets = {"att.keys"};
    EXPECT_NE(error_of([&] { m.add_lora(lo); }).find("'att.keys' matches no matrix"), std::string::npos);
    lo.targets = {"att.key"};
    m.add_lora(lo);
    EXPECT_NE(error_of([&] { m.add_lora(lo); }).find("already has LoRA"), std::string::npos);
    auto data = tiny_corpus();
    LmTrainConfig c = small_config(tmpdir("both"), 2);
    c.lora = true;
    c.train_state = true;
    EXPECT_NE(error_of([&] { train_language_model(m, *data, c); }).find("separate modes"), std::string::npos);
}

TEST(TrainState, TunesOnlyTheInitialStateAndReloads) {
    for (int version : {5, 6}) {
        SCOPED_TRACE("version " + std::to_string(version));
        const fs::path out = tmpdir("state_v" + std::to_string(version));
        Model m = Model::from_tensors(perturbed_weights(version, 5));
        const TensorList before = snapshot(m);
        auto data = tiny_corpus();
        const double loss_before = fixed_window_loss(m, *data);
        LmTrainConfig c = small_config(out, 15);
        c.train_state = true;
        c.train.lr = 1.0;  // the official state-tuning recipe: lr_init 1 → lr_final 0.01 (spec §7.5)
        c.train.lr_final = 0.01;
        train_language_model(m, *data, c);
        const double loss_after = fixed_window_loss(m, *data);
        EXPECT_LT(loss_after, loss_before - 0.05) << "state tuning did not reduce the loss";
        // Every other weight is bit-identical; the state moved.
        for (const auto& nt : before)
            EXPECT_TRUE(at::equal(*find_tensor(m.state_dict(), nt.name), nt.tensor)) << nt.name;
        const TensorList tuned = m.state_dict();  // find_tensor points into it (ASan: a temporary's would dangle)
        const at::Tensor* ts = find_tensor(tuned, "blocks.1.att.time_state");
        ASSERT_NE(ts, nullptr);
        EXPECT_EQ(ts->sizes(), (std::vector<int64_t>{1, 64, 64}));
        EXPECT_GT(ts->abs().max().item<double>(), 0);
        // The exported file carries official time_state keys and gives the same logits.
        Model reloaded = Model::load((out / "model.safetensors").string());
        EXPECT_TRUE(reloaded.config().has_time_state);
        const at::Tensor tokens = tokens_for_test();
        EXPECT_TRUE(aviary::test::rel_close(logits_of(reloaded, tokens), logits_of(m, tokens), 1e-6));
    }
}

TEST(TrainState, GradientReachesTheInitialState) {
    // d loss / d time_state against a central finite difference on one element.
    Model m = Model::from_tensors(perturbed_weights(6, 6));
    m.add_time_state();
    m.train(true);
    at::Tensor ts = *find_tensor(m.state_dict(), "blocks.0.att.time_state");
    {
        at::NoGradGuard no_grad;
        at::manual_seed(1);
        ts.copy_(0.1 * at::randn(ts.sizes()));
    }
    const at::Tensor tokens = tokens_for_test();
    auto loss = [&] {
        at::Tensor logits = logits_of(m, tokens.narrow(1, 0, 15));
        return lm_loss(logits, tokens.narrow(1, 1, 15), at::Tensor(), false);
    };
    loss().backward();
    ASSERT_TRUE(ts.grad().defined());
    const double analytic = ts.grad()[0][3][5].item<double>();
    const double h = 1e-2;
    double up, down;
    {
        at::NoGradGuard no_grad;
        ts[0][3][5] += h;
        up = loss().item<double>();
        ts[0][3][5] -= 2 * h;
        down = loss().item<double>();
        ts[0][3][5] += h;
    }
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 1e-3 + 2e-2 * std::abs(numeric))
        << "analytic " << analytic << " numeric " << numeric;
    EXPECT_GT(std::abs(analytic), 1e-7);
}
