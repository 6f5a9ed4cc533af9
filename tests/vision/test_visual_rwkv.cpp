// Tests vision/src/prompt.cpp (prompt assembly token by token against tools/make_vision_prompt_fixture.py, which
// uses the official rwkv package tokenizer), visual_rwkv.cpp (odd-block flip, prefill + recurrent decoding equal to
// evaluate.py's full recompute, loading errors, bf16 files kept in bf16, answer timings) and vision_train.cpp (what
// each stage trains).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <unistd.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aviary/core/model_init.h"
#include "aviary/core/tokenizer.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/vision_train.h"
#include "aviary/vision/visual_rwkv.h"
#include "common/compare.h"
#include "common/error_of.h"

using aviary::test::error_of;
using aviary::test::fixture;
namespace av = aviary::vision;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& tag) {
    auto d = fs::temp_directory_path() / ("aviary_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// A random VisualRWKV: RWKV-6 L4 D64 (official init, then perturbed), byte vocabulary, CLIP ViT with 32 px images of
// 8 px patches (16 patches + CLS).
av::VisualRwkv tiny_model(uint64_t seed = 7) {
    auto w = aviary::init_weights(aviary::init_config(4, 64, 6, 256), seed);
    torch::manual_seed(seed);
    for (auto& t : w)  // the official init zeroes several matrices; make every weight matter
        if (t.tensor.is_floating_point()) t.tensor = t.tensor + 0.05 * torch::randn_like(t.tensor);
    av::ClipVisionConfig vc;
    vc.hidden = 32;
    vc.heads = 2;
    vc.intermediate = 64;
    vc.layers = 2;
    vc.patch = 8;
    vc.image_size = 32;
    return av::VisualRwkv::from_parts(aviary::Model::from_tensors(w), av::ClipVision::create(vc, seed + 1),
                                      torch::randn({64, 32}) * 0.2);
}

// Three LLaVA samples on the fixture images (CLIP input 32 px), one of them text-only, written to DIR/data.json.
std::vector<av::LlavaSample> three_samples(const fs::path& dir) {
    const std::string data = (dir / "data.json").string();
    std::ofstream(data) << R"([
      {"id": "a", "image": "scene_rgb.png", "conversations": [{"from": "human", "value": "<image>\nColour?"},
                                                            {"from": "gpt", "value": "red"}]},
      {"id": "b", "image": "scene_grey.png", "conversations": [{"from": "human", "value": "What is it?\n<image>"},
                                                             {"from": "gpt", "value": "a grey scene"}]},
      {"id": "c", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}])";
    return av::read_llava(data);
}

}  // namespace

TEST(VisionPrompt, TokensMatchTheOfficialTokenizerTurnByTurn) {
    std::ifstream f(fixture("vision/prompt_cases.json"));
    auto j = nlohmann::json::parse(f);
    const auto world = aviary::make_tokenizer("world", 0);
    const aviary::Tokenizer& codec = *world;
    EXPECT_EQ(codec.encode("Assistant:"), (std::vector<int32_t>{5585, 41693, 59}));  // spec A.5
    EXPECT_EQ(codec.encode("\n\n"), (std::vector<int32_t>{261}));
    for (const auto& c : j["cases"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        std::vector<av::Turn> turns;
        for (const auto& t : c["turns"]) turns.push_back({t["from"], t["value"]});
        auto p = av::build_prompt(turns, av::parse_image_position(c["position"]), codec, c["open_assistant"]);
        const auto want_ids = c["ids"].get<std::vector<int32_t>>();
        const auto want_sup = c["supervised"].get<std::vector<int>>();
        ASSERT_EQ(p.ids.size(), want_ids.size());
        for (size_t i = 0; i < want_ids.size(); ++i) {
            EXPECT_EQ(p.ids[i], want_ids[i]) << "token " << i;
            EXPECT_EQ(int(p.supervised[i]), want_sup[i]) << "supervision of token " << i;
        }
        EXPECT_EQ(p.image_at, c["image_at"].get<int64_t>());
    }
    // the inference prompt helper is the open single-question case
    auto q = av::question_prompt("How many circles are there?", av::ImagePosition::Middle, codec);
    EXPECT_EQ(q.ids, j["cases"][5]["ids"].get<std::vector<int32_t>>());
    EXPECT_NE(error_of([&] {
                  av::build_prompt({{"human", "<image> <image>"}}, av::ImagePosition::First, codec, true);
              }).find("2 <image> tags"),
              std::string::npos);
}

// One choice of tokenizer for a VisualRWKV model (CLI and studio): the kind given, else the file's "tokenizer"
// metadata, else by vocabulary size; a World tokenizer for a 256-id model is refused.
TEST(VisionTokenizer, GivenThenMetadataThenVocabularySize) {
    auto m = tiny_model(5);  // 256 ids, no metadata
    EXPECT_EQ(av::tokenizer_for(m)->kind(), "byte");
    EXPECT_NE(error_of([&] { av::tokenizer_for(m, "world"); }).find("--tokenizer byte"), std::string::npos);
    // a 512-id model: by size the World tokenizer; the metadata of its file says byte; a kind given wins
    const fs::path dir = scratch("vision_tokenizer");
    auto w = aviary::init_weights(aviary::init_config(2, 64, 6, 512), 3);
    av::ClipVisionConfig vc;
    vc.hidden = 32, vc.heads = 2, vc.intermediate = 64, vc.layers = 1, vc.patch = 8, vc.image_size = 32;
    auto wide = av::VisualRwkv::from_parts(aviary::Model::from_tensors(w), av::ClipVision::create(vc, 4),
                                           torch::randn({64, 32}));
    EXPECT_EQ(av::tokenizer_for(wide)->kind(), "world");
    wide.save((dir / "byte512.safetensors").string(), {{"tokenizer", "byte"}});
    const auto loaded = av::VisualRwkv::load((dir / "byte512.safetensors").string());
    EXPECT_EQ(av::tokenizer_for(loaded)->kind(), "byte");
    EXPECT_EQ(av::tokenizer_for(loaded, "world")->kind(), "world");
}

TEST(VisionFlip, OddBlocksSeeThePatchRowsReversed) {
    // x (1, 8, 1) = 0..7, patch rows [2, 6): odd layers get 0 1 5 4 3 2 6 7 (before and after the block), even
    // layers the input unchanged
    at::Tensor x = torch::arange(8, torch::kFloat).view({1, 8, 1});
    auto hook = av::odd_block_flip(2, 4);
    const std::vector<float> flipped = {0, 1, 5, 4, 3, 2, 6, 7};
    for (int layer : {0, 1, 2, 3})
        for (bool after : {false, true}) {
            at::Tensor y = hook(layer, x, after).flatten();
            for (int i = 0; i < 8; ++i)
                EXPECT_EQ(y[i].item<float>(), layer % 2 ? flipped[i] : float(i)) << "layer " << layer << " row " << i;
        }
    // the hook restores the order after the block: applying it twice is the identity
    EXPECT_TRUE(hook(1, hook(1, x, false), true).equal(x));
}

TEST(VisionFlip, ForwardUsesTheFlipOnThePatchSpanOnly) {
    auto m = tiny_model();
    torch::NoGradGuard ng;
    auto before = torch::tensor({{85, 115, 101, 114, 58, 32}}, torch::kInt64);  // "User: "
    auto after = torch::tensor({{10, 81, 63, 10, 10}}, torch::kInt64);
    at::Tensor rows = torch::randn({1, m.image_rows(), 64});
    aviary::State s1 = m.rwkv().new_state(1);
    at::Tensor got = m.forward(before, rows, after, s1, true);
    at::Tensor x = torch::cat({m.rwkv().embed(before), rows, m.rwkv().embed(after)}, 1);
    // reference: flip by hand with an explicit index permutation on odd layers
    auto manual = [&](int layer, const at::Tensor& h, bool) {
        if (layer % 2 == 0) return h;
        std::vector<int64_t> idx(h.size(1));
        std::iota(idx.begin(), idx.end(), 0);
        std::reverse(idx.begin() + 6, idx.begin() + 6 + 16);  // 16 patches after 6 text tokens; CLS stays
        return h.index_select(1, torch::tensor(idx, torch::kInt64));
    };
    aviary::State s2 = m.rwkv().new_state(1);
    at::Tensor want = m.rwkv().forward_embeddings(x, s2, true, manual);
    EXPECT_TRUE(aviary::test::rel_close(got, want, 1e-6));
    // and the flip matters: without it the logits after the image differ
    aviary::State s3 = m.rwkv().new_state(1);
    at::Tensor plain = m.rwkv().forward_embeddings(x, s3, true);
    EXPECT_GT((plain.slice(1, 22) - got.slice(1, 22)).abs().max().item<double>(), 1e-3);
}

TEST(VisionAnswer, PrefillThenRecurrentEqualsFullRecompute) {
    // evaluate.py re-runs the whole flipped forward for every new token; prefill + RNN steps must agree (spec A.4.6)
    auto m = tiny_model(11);
    const aviary::ByteTokenizer codec;
    torch::manual_seed(3);
    at::Tensor px = torch::randn({3, 32, 32});
    av::AnswerOptions o;
    o.max_tokens = 6;
    auto r = av::answer_question(m, codec, px, "What colour is it?", o);
    ASSERT_GE(r.tokens, 1);
    torch::NoGradGuard ng;
    auto p = av::question_prompt("What colour is it?", av::ImagePosition::Middle, codec);
    std::vector<int64_t> ids(p.ids.begin(), p.ids.end());
    at::Tensor rows = m.encode_image(px.unsqueeze(0));
    std::vector<int32_t> got;
    for (int k = 0; k < r.tokens; ++k) {
        auto t = torch::tensor(ids, torch::kInt64).unsqueeze(0);
        aviary::State s = m.rwkv().new_state(1);
        at::Tensor logits = m.forward(t.slice(1, 0, p.image_at), rows, t.slice(1, p.image_at), s, false);
        const int64_t next = logits.argmax(-1).item<int64_t>();
        ids.push_back(next);
        got.push_back(int32_t(next));
    }
    EXPECT_EQ(got, r.ids);
}

TEST(VisionLoad, TextOnlyModelsAndMissingParts) {
    const auto dir = scratch("vision_load");
    auto m = tiny_model();
    const std::string text_only = (dir / "rwkv.safetensors").string();
    aviary::write_safetensors(text_only, m.rwkv().state_dict());
    std::string e = error_of([&] { av::VisualRwkv::load(text_only); });
    EXPECT_NE(e.find("is a text-only model"), std::string::npos) << e;
    // RWKV + separate CLIP without a projector anywhere
    e = error_of([&] { av::VisualRwkv::load(text_only, fixture("vision/clip_tiny/model.safetensors")); });
    EXPECT_NE(e.find("no projector 'proj.weight'"), std::string::npos) << e;
    // with a projector file of the wrong width
    const std::string proj = (dir / "proj.safetensors").string();
    aviary::write_safetensors(proj, {{"proj.weight", torch::zeros({64, 31})}});
    e = error_of([&] { av::VisualRwkv::load(text_only, fixture("vision/clip_tiny/model.safetensors"), proj); });
    EXPECT_NE(e.find("expected (64, 32)"), std::string::npos) << e;
    // the good three-file combination, and the one-file round trip, give the same logits
    aviary::write_safetensors(proj, {{"proj.weight", torch::randn({64, 32})}});
    auto three = av::VisualRwkv::load(text_only, fixture("vision/clip_tiny/model.safetensors"), proj);
    const std::string one = (dir / "visual.safetensors").string();
    three.save(one);
    auto back = av::VisualRwkv::load(one);
    torch::NoGradGuard ng;
    at::Tensor px = torch::randn({1, 3, 32, 32});
    EXPECT_TRUE(back.encode_image(px).equal(three.encode_image(px)));
}

// A bf16 VisualRWKV file loaded with dtype "auto" stays bf16 in memory (RWKV matrices, CLIP linear layers,
// projector); the default (fp32, what training uses) widens it. Its image rows agree with the fp32 model of the
// same rounded weights within 3e-2 of max|ref| (CLIP as in VisionClip.Bf16FileRunsInBf16…, then the bf16
// projector); the answer's timings add up and count the generated tokens.
TEST(VisionLoad, Bf16FileStaysBf16AndAnswersWithTimings) {
    const auto dir = scratch("vision_bf16");
    auto m = tiny_model(13);
    aviary::TensorList rounded;
    for (const auto& t : m.state_dict())
        rounded.push_back({t.name, t.tensor.is_floating_point() ? t.tensor.detach().to(at::kBFloat16) : t.tensor});
    const std::string path = (dir / "bf16.safetensors").string();
    aviary::write_safetensors(path, rounded, {{"clip_heads", "2"}});
    aviary::ModelOptions auto_dtype;
    auto_dtype.dtype = "auto";
    auto kept = av::VisualRwkv::load(path, "", "", auto_dtype);
    auto wide = av::VisualRwkv::load(path);
    EXPECT_EQ(kept.rwkv().options().dtype, "bf16");
    EXPECT_TRUE(kept.vit().is_bf16());
    EXPECT_EQ(kept.proj().scalar_type(), at::kBFloat16);
    EXPECT_EQ(wide.rwkv().options().dtype, "fp32");
    EXPECT_FALSE(wide.vit().is_bf16());
    EXPECT_EQ(wide.proj().scalar_type(), at::kFloat);
    torch::manual_seed(4);
    const at::Tensor px = torch::randn({3, 32, 32});
    {
        torch::NoGradGuard ng;
        EXPECT_TRUE(
            aviary::test::rel_close(kept.encode_image(px.unsqueeze(0)), wide.encode_image(px.unsqueeze(0)), 3e-2));
    }
    const aviary::ByteTokenizer codec;
    av::AnswerOptions o;
    o.max_tokens = 5;
    o.started = std::chrono::steady_clock::now() - std::chrono::milliseconds(20);  // e.g. the caller's decoding
    for (auto* model : {&kept, &wide}) {
        auto r = av::answer_question(*model, codec, px, "What colour is it?", o);
        const auto& t = r.timings;
        EXPECT_EQ(size_t(r.tokens), r.ids.size());
        EXPECT_LE(r.tokens, 5);
        EXPECT_GE(t.image_s, 0.02);  // counted from o.started
        EXPECT_GE(t.prefill_s, 0.0);
        EXPECT_GE(t.decode_s, 0.0);
        EXPECT_GE(t.ttft_s, t.image_s + t.prefill_s - 1e-9);
        EXPECT_LE(t.ttft_s, t.image_s + t.prefill_s + t.decode_s + 1e-9);
    }
}

TEST(VisionTrain, StageOneTrainsOnlyTheProjectorStageTwoNotClip) {
    const auto dir = scratch("vision_train");
    auto samples = three_samples(dir);
    ASSERT_EQ(samples.size(), 3u);
    const aviary::ByteTokenizer codec;
    for (int stage : {1, 2}) {
        SCOPED_TRACE("stage " + std::to_string(stage));
        auto m = tiny_model(21);
        std::map<std::string, at::Tensor> before;
        for (auto& t : m.state_dict()) before[t.name] = t.tensor.detach().clone();
        auto c = av::stage_defaults(stage);
        c.train.steps = 2;
        c.train.batch = 3;
        c.train.lr = 1e-2;  // large enough that every trained tensor visibly moves in two steps
        c.train.lr_final = 1e-2;
        c.image_folder = fixture("vision");
        c.out_dir = (dir / ("out" + std::to_string(stage))).string();
        auto summary = av::train_vision(m, codec, samples, c);
        ASSERT_EQ(summary.losses.size(), 2u);
        EXPECT_TRUE(std::isfinite(summary.losses[0]) && summary.losses[0] > 0);
        int changed = 0;
        for (auto& t : m.state_dict()) {
            const bool same = t.tensor.detach().equal(before[t.name]);
            const bool trains =
                stage == 1 ? t.name == "proj.weight" : (t.name.rfind("vit.", 0) != 0 && t.name != "rwkv.emb.weight");
            if (!trains) {
                EXPECT_TRUE(same) << t.name << " changed in stage " << stage;
            }
            changed += !same;
        }
        if (stage == 1)
            EXPECT_EQ(changed, 1);
        else
            EXPECT_GT(changed, 20);
        EXPECT_TRUE(fs::exists(summary.final_model));
        EXPECT_TRUE(fs::exists(fs::path(c.out_dir) / "feature_cache.safetensors"));
    }
}

// Checkpoints of train_vision: stopping after step 2 and resuming from the checkpoint gives bit for bit the weights
// of an uninterrupted 4-step run (same data order, optimizer state and RNG), and the log holds steps 1–4 once.
TEST(VisionTrain, StopAndResumeIsBitExact) {
    const auto dir = scratch("vision_resume");
    auto samples = three_samples(dir);
    const aviary::ByteTokenizer codec;
    auto config = [&](const std::string& out) {
        auto c = av::stage_defaults(2);
        c.train.steps = 4;
        c.train.batch = 2;  // 3 samples: the epochs' permutations straddle the stop
        c.train.lr = 1e-2;
        c.train.lr_final = 1e-3;
        c.image_folder = fixture("vision");
        c.out_dir = (dir / out).string();
        c.save_every = 1;
        return c;
    };
    auto straight = tiny_model(5);
    av::train_vision(straight, codec, samples, config("straight"));

    auto first = tiny_model(5);
    auto s1 = av::train_vision(first, codec, samples, config("resumed"),
                               [](const av::VisionTrainProgress& p) { return p.phase != "train" || p.step < 2; });
    EXPECT_TRUE(s1.stopped);
    ASSERT_EQ(s1.losses.size(), 2u);
    ASSERT_FALSE(aviary::latest_train_checkpoint((dir / "resumed").string()).empty());
    // What a SIGKILL in step 3 leaves (tools/kill_resume.py found these kept: the log then held steps 1, 2, 3, 3, 4):
    // step 3 logged after the step-2 checkpoint, a line cut mid-write, a checkpoint directory and an output
    // temporary half written.
    std::ofstream(dir / "resumed" / "train_log.jsonl", std::ios::app)
        << "{\"stage\": 2, \"step\": 3}\n{\"stage\": 2, \"st";
    fs::create_directories(dir / "resumed" / "checkpoints" / ".tmp-step-00000003-99");
    std::ofstream(dir / "resumed" / ".model.safetensors.tmp-a1B2c3") << "half";
    auto second = tiny_model(5);  // fresh weights: everything must come from the checkpoint
    auto c2 = config("resumed");
    c2.resume = true;
    auto s2 = av::train_vision(second, codec, samples, c2);
    EXPECT_EQ(s2.start_step, 2);
    ASSERT_EQ(s2.losses.size(), 2u);
    auto a = straight.state_dict(), b = second.state_dict();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].tensor.equal(b[i].tensor)) << a[i].name;
    std::ifstream log(dir / "resumed" / "train_log.jsonl");
    std::vector<int64_t> steps;
    for (std::string l; std::getline(log, l);) steps.push_back(nlohmann::json::parse(l)["step"].get<int64_t>());
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
    EXPECT_FALSE(fs::exists(dir / "resumed" / "checkpoints" / ".tmp-step-00000003-99"));
    EXPECT_FALSE(fs::exists(dir / "resumed" / ".model.safetensors.tmp-a1B2c3"));
    // A checkpoint of another model (here: 2 RWKV layers instead of 4) is refused, naming the difference.
    av::ClipVisionConfig vc;
    vc.hidden = 32;
    vc.heads = 2;
    vc.intermediate = 64;
    vc.layers = 2;
    vc.patch = 8;
    vc.image_size = 32;
    auto shallower = av::VisualRwkv::from_parts(
        aviary::Model::from_tensors(aviary::init_weights(aviary::init_config(2, 64, 6, 256), 1)),
        av::ClipVision::create(vc, 2), torch::randn({64, 32}) * 0.2);
    auto c3 = config("resumed");
    c3.resume = true;
    c3.train.steps = 6;
    EXPECT_NE(error_of([&] { av::train_vision(shallower, codec, samples, c3); }).find("another model"),
              std::string::npos);
}

// ViT pretraining on per-patch labels (pretrain_vit): the first loss is the mean over groups of ln K (the head starts
// near zero, so every class is equally likely: an independent value of the cross-entropy), the loss falls on a
// learnable labelling (labels by patch position), only vit.* changes, the saved model has no head and loads; and
// malformed label files are one-line errors naming what was expected.
TEST(VisionTrain, VitPretrainingOnPatchLabels) {
    const auto dir = scratch("vision_vit_pretrain");
    const std::string path = (dir / "patches.json").string();
    {
        nlohmann::json items = nlohmann::json::array();
        for (const char* image : {"scene_rgb.png", "scene_grey.png"}) {
            nlohmann::json labels = nlohmann::json::array();
            for (int p = 0; p < 16; ++p) labels.push_back({p % 2, (p / 4) % 3});  // column parity, row band
            items.push_back({{"image", image}, {"labels", labels}});
        }
        std::ofstream(path) << nlohmann::json{
            {"grid", 4},
            {"groups", {{"even", "odd"}, {"top", "middle", "bottom"}}},
            {"items", items}}.dump();
    }
    auto data = av::read_patch_labels(path);
    ASSERT_EQ(data.images.size(), 2u);
    auto m = tiny_model(31);
    std::map<std::string, at::Tensor> before;
    for (auto& t : m.state_dict()) before[t.name] = t.tensor.detach().clone();
    auto c = av::stage_defaults(0);
    c.train.steps = 40;
    c.train.batch = 2;
    c.train.lr = 1e-2;
    c.train.lr_final = 1e-2;
    c.train.warmup = 0;
    c.image_folder = fixture("vision");
    c.out_dir = (dir / "out").string();
    auto summary = av::pretrain_vit(m, data, c);
    ASSERT_EQ(summary.losses.size(), 40u);
    EXPECT_NEAR(summary.losses[0], (std::log(2.0) + std::log(3.0)) / 2, 0.05);
    EXPECT_LT(summary.losses.back(), 0.3 * summary.losses[0]);
    for (auto& t : m.state_dict()) {
        const bool same = t.tensor.detach().equal(before[t.name]);
        if (t.name.rfind("vit.", 0) == 0) continue;
        EXPECT_TRUE(same) << t.name << " changed in ViT pretraining";
    }
    EXPECT_FALSE(m.state_dict()[0].tensor.requires_grad());
    auto back = av::VisualRwkv::load(summary.final_model);
    for (auto& t : back.state_dict()) EXPECT_EQ(t.name.find("patch_head"), std::string::npos) << t.name;

    auto bad = [&](const std::string& text) {
        const std::string p = (dir / "bad.json").string();
        std::ofstream(p) << text;
        return error_of([&] { av::read_patch_labels(p); });
    };
    EXPECT_NE(bad(R"({"grid": 2, "groups": [["a", "b"]], "items": [{"image": "x.png", "labels": [[0], [1]]}]})")
                  .find("expected 4 patch labels"),
              std::string::npos);
    EXPECT_NE(bad(R"({"grid": 1, "groups": [["a", "b"]], "items": [{"image": "x.png", "labels": [[2]]}]})")
                  .find("outside group"),
              std::string::npos);
    EXPECT_NE(bad("{\"grid\": 1,").find("not valid JSON"), std::string::npos);
    EXPECT_NE(bad(R"({"grid": 1, "groups": [["a", "b"]]})").find("'grid', 'groups' and 'items'"), std::string::npos);
    EXPECT_NE(error_of([&] { av::read_patch_labels((dir / "none.json").string()); }).find("does not exist"),
              std::string::npos);
    // a 2×2 grid on a ViT with 4×4 patches
    auto small = av::read_patch_labels([&] {
        const std::string p = (dir / "grid2.json").string();
        std::ofstream(p) << R"({"grid": 2, "groups": [["a", "b"]], "items": [{"image": "scene_rgb.png",
                                "labels": [[0], [1], [0], [1]]}]})";
        return p;
    }());
    auto c2 = c;
    c2.out_dir = (dir / "out2").string();
    EXPECT_NE(error_of([&] { av::pretrain_vit(m, small, c2); }).find("grid"), std::string::npos);
}
