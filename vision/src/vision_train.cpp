// VisualRWKV training stages on the shared Trainer (spec A.6 loss, A.7 stages and defaults) over LLaVA data
// (llava_data.cpp): left-padded text before the image (id 0, no loss), image rows, text after; shifted cross-entropy
// on supervised tokens, per-sample mean then batch mean, L2Wrap; stages 1 and 2 read the frozen CLIP's features from
// the feature cache (feature_cache.cpp). Also the ViT pretraining on per-patch labels.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "aviary/core/error.h"
#include "aviary/vision/vision_train.h"

namespace aviary::vision {

namespace fs = std::filesystem;
using json = nlohmann::json;

VisionTrainConfig stage_defaults(int stage) {
    VisionTrainConfig c;
    c.stage = stage;
    c.train.warmup = 0;
    c.train.weight_decay = 0;
    c.train.grad_clip = 1.0;
    c.train.beta1 = 0.9;
    c.train.beta2 = 0.99;
    c.train.adam_eps = 1e-8;
    if (stage == 1) {  // scripts/train/*_pretrain.sh: proj only, 1e-3 -> 1e-5 cosine, ctx 1024, image first
        c.train.lr = 1e-3;
        c.train.lr_final = 1e-5;
        c.train.ctx_len = 1024;
        c.position = ImagePosition::First;
    } else if (stage == 2) {  // *_finetune.sh: RWKV + proj, 2e-5 constant, ctx 2048, image middle
        c.train.lr = 2e-5;
        c.train.lr_final = 2e-5;
        c.train.ctx_len = 2048;
        c.position = ImagePosition::Middle;
    } else {
        AVIARY_CHECK(stage == 0, "unknown training stage ", stage, " (expected 0, 1 or 2)");
        c.train.lr = 1e-3;  // from scratch (Aviary's demo): everything trains
        c.train.lr_final = 1e-4;
        c.train.warmup = 20;
        c.train.ctx_len = 1024;
        c.position = ImagePosition::Middle;
    }
    return c;
}

at::Tensor vision_batch_loss(VisualRwkv& model, const Tokenizer& tokenizer, const std::vector<LlavaSample>& data,
                             const std::vector<int64_t>& indices, const VisionTrainConfig& config,
                             const FeatureCache* cache, bool use_l2wrap) {
    const int64_t B = int64_t(indices.size());
    AVIARY_CHECK(B >= 1, "empty batch");
    const int64_t I = model.image_rows(), V = model.rwkv().config().vocab_size;
    std::vector<PromptTokens> prompts;
    int64_t p_max = 0, a_max = 0;
    for (int64_t i : indices) {
        AVIARY_CHECK(i >= 0 && i < int64_t(data.size()), "sample index ", i, " out of range");
        PromptTokens p = build_prompt(data[i].turns, config.position, tokenizer, /*open_assistant=*/false);
        AVIARY_CHECK(data[i].image.empty() == (p.image_at < 0), "sample '", data[i].id, "': ",
                     data[i].image.empty() ? "<image> in a sample without an image" : "an image but no <image> tag");
        if (p.image_at < 0) p.image_at = 0;  // text-only: zero image rows before the text (spec A.4.3)
        for (int32_t id : p.ids)
            AVIARY_CHECK(id < V, "token ", id, " of sample '", data[i].id, "' is outside the model's vocabulary of ",
                         V);
        p_max = std::max(p_max, p.image_at);
        a_max = std::max(a_max, int64_t(p.ids.size()) - p.image_at);
        prompts.push_back(std::move(p));
    }
    // keep the window within ctx_len (the text after the image is cut)
    a_max = std::min(a_max, config.train.ctx_len - p_max - I);
    AVIARY_CHECK(a_max >= 1, "ctx_len ", config.train.ctx_len, " cannot hold ", p_max, " text tokens, ", I,
                 " image rows and an answer");
    const int64_t T = p_max + I + a_max;
    auto before = torch::zeros({B, std::max<int64_t>(p_max, 1)}, torch::kInt64);
    auto after = torch::zeros({B, a_max}, torch::kInt64);
    auto labels = torch::full({B, T}, -100, torch::kInt64);
    // accessors, not tensor indexing: that is a select and a fill per token, ~5 % of a vision step
    auto bef = before.accessor<int64_t, 2>(), aft = after.accessor<int64_t, 2>(), lab = labels.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
        const auto& p = prompts[b];
        for (int64_t k = 0; k < p.image_at; ++k) bef[b][p_max - p.image_at + k] = p.ids[k];  // left pad with 0
        for (int64_t k = p.image_at; k < int64_t(p.ids.size()) && k - p.image_at < a_max; ++k) {
            aft[b][k - p.image_at] = p.ids[k];
            if (p.supervised[k]) lab[b][p_max + I + k - p.image_at] = p.ids[k];
        }
    }
    if (p_max == 0) before = at::Tensor();
    // image rows (B, I, D): cached frozen features (stages 1, 2) or a live CLIP forward (stage 0)
    std::vector<at::Tensor> feats;
    ClipPreprocess pre;
    pre.size = model.image_size();
    const int64_t C = model.vit().config().hidden;
    for (int64_t i : indices) {
        const auto& s = data[i];
        if (s.image.empty())
            feats.push_back(at::Tensor());
        else if (cache)
            feats.push_back(cache->get(s.image));
        else
            feats.push_back(load_clip_image(llava_image_path(config.image_folder, s.image), pre));
    }
    at::Tensor rows;
    if (cache) {
        for (auto& f : feats)
            if (!f.defined()) f = torch::zeros({I, C});
        rows = model.project(torch::stack(feats));
    } else {
        for (auto& f : feats)
            if (!f.defined()) f = torch::zeros({3, pre.size, pre.size});
        rows = model.encode_image(torch::stack(feats));
    }
    // text-only samples: image rows overwritten with zeros
    auto keep = torch::ones({B, 1, 1});
    bool any_text_only = false;
    for (int64_t b = 0; b < B; ++b)
        if (data[indices[b]].image.empty()) {
            keep[b] = 0.0;
            any_text_only = true;
        }
    if (any_text_only) rows = rows * keep;
    State state = model.rwkv().new_state(B);
    // (B, T, V); the loss in fp32 also when bf16 training gives bf16 logits
    at::Tensor logits = model.forward(before, rows, after, state, /*all_logits=*/true).to(at::kFloat);
    // shifted CE: logits[:, :-1] vs labels[:, 1:]; per-sample mean over valid tokens, then mean over samples
    at::Tensor tgt = labels.slice(1, 1);
    at::Tensor valid = tgt.ne(-100);
    at::Tensor ce = at::cross_entropy_loss(logits.slice(1, 0, T - 1).reshape({-1, V}), tgt.reshape({-1}).clamp_min(0),
                                           {}, at::Reduction::None)
                        .view({B, T - 1});
    at::Tensor n = valid.sum(1);
    at::Tensor per = (ce * valid).sum(1) / n.clamp_min(1);
    at::Tensor has = n.gt(0);
    at::Tensor loss = has.any().item<bool>() ? per.masked_select(has).mean() : (logits.sum() * 0.0);
    return use_l2wrap ? l2wrap(loss, logits) : loss;
}

namespace {

// The step loop shared by the stages and the ViT pretraining: seeded epoch permutations, the shared Trainer,
// train_log.jsonl, checkpoints (save_every, on stop and at the end; resume restores weights, optimizer, RNG and
// data position), and the final model.safetensors. `tensors` are what the checkpoints hold.
VisionTrainSummary run_training(VisualRwkv& model, const TensorList& tensors, const TrainOptions& o,
                                const VisionTrainConfig& config, const std::string& stage, int64_t n_items,
                                const std::function<at::Tensor(const std::vector<int64_t>&)>& batch_loss,
                                const std::function<double()>& elapsed,
                                const std::function<bool(const VisionTrainProgress&)>& on_progress) {
    AVIARY_CHECK(n_items >= 1, "no training items");
    const json stage_json = stage == "vit" ? json("vit") : json(std::stoi(stage));
    VisionTrainSummary summary;
    {
        Trainer trainer(tensors, o);
        for (const auto& t : trainer.trainable()) {
            summary.trained.push_back(t.name);
            summary.trainable_params += t.tensor.numel();
        }
        const std::string model_json =
            json{{"kind", "visual-rwkv"}, {"stage", stage_json}, {"tensors", tensors.size()}}.dump();
        double elapsed0 = 0, last_loss = 0;
        clear_interrupted_writes(config.out_dir);
        seed_training_rng(o.seed);  // a checkpoint's RNG state replaces it below
        if (config.resume) {
            const std::string ck = latest_train_checkpoint(config.out_dir);
            if (!ck.empty()) {
                const CheckpointInfo info = load_train_checkpoint(ck, tensors, trainer);
                summary.start_step = info.step;
                elapsed0 = info.elapsed_s;
                last_loss = info.loss;
            }
        }
        auto total_elapsed = [&] { return elapsed0 + elapsed(); };
        const fs::path log_path = fs::path(config.out_dir) / "train_log.jsonl";
        restart_train_log(log_path.string(), summary.start_step);  // each step once, also after a kill
        std::ofstream log(log_path, std::ios::app);
        std::mt19937_64 rng(o.seed);
        std::vector<int64_t> order;
        int64_t cursor = 0;
        auto next_batch = [&] {
            std::vector<int64_t> idx;
            for (int64_t b = 0; b < o.batch; ++b) {
                if (cursor % n_items == 0) {  // a new epoch: a fresh seeded permutation
                    order.resize(size_t(n_items));
                    std::iota(order.begin(), order.end(), 0);
                    std::shuffle(order.begin(), order.end(), rng);
                }
                idx.push_back(order[size_t(cursor % n_items)]);
                ++cursor;
            }
            return idx;
        };
        for (int64_t s = 0; s < summary.start_step; ++s) next_batch();  // a resumed run sees the same order
        auto save = [&](int64_t step) {
            CheckpointInfo info;
            info.step = step;
            info.data_position = cursor;
            info.loss = last_loss;
            info.elapsed_s = total_elapsed();
            save_train_checkpoint(config.out_dir, tensors, model_json, trainer, info, config.keep_last);
        };
        int64_t s = summary.start_step;
        while (s < o.steps) {
            StepResult r = trainer.step([&](int64_t) { return batch_loss(next_batch()); });
            ++s;
            last_loss = r.loss;
            summary.losses.push_back(r.loss);
            log << json{{"stage", stage_json},      {"step", s},
                        {"loss", r.loss},           {"lr", r.lr},
                        {"grad_norm", r.grad_norm}, {"elapsed_s", total_elapsed()}}
                       .dump()
                << "\n";
            log.flush();
            VisionTrainProgress p;
            p.phase = "train";
            p.step = s;
            p.total = o.steps;
            p.loss = r.loss;
            p.lr = r.lr;
            p.elapsed_s = total_elapsed();
            if (on_progress && !on_progress(p)) {
                summary.stopped = true;
                break;
            }
            if (config.save_every > 0 && s % config.save_every == 0 && s < o.steps) save(s);
        }
        if (s > summary.start_step || summary.stopped) save(s);  // on stop and at the end
    }
    model.rwkv().train(false);
    model.vit().train(false);
    model.proj().set_requires_grad(false);
    summary.final_model = (fs::path(config.out_dir) / "model.safetensors").string();
    Metadata meta = config.metadata;
    meta["stage"] = stage;
    meta["image_position"] = config.position == ImagePosition::First  ? "first"
                             : config.position == ImagePosition::Last ? "last"
                                                                      : "middle";
    model.save(summary.final_model, meta);
    return summary;
}

}  // namespace

VisionTrainSummary train_vision(VisualRwkv& model, const Tokenizer& tokenizer, const std::vector<LlavaSample>& data,
                                const VisionTrainConfig& config,
                                const std::function<bool(const VisionTrainProgress&)>& on_progress) {
    AVIARY_CHECK(config.stage >= 0 && config.stage <= 2, "unknown training stage ", config.stage);
    AVIARY_CHECK(!config.out_dir.empty(), "training needs an output directory");
    fs::create_directories(config.out_dir);
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    std::unique_ptr<FeatureCache> cache;
    if (config.stage >= 1) {
        const std::string cp = config.feature_cache.empty()
                                   ? (fs::path(config.out_dir) / "feature_cache.safetensors").string()
                                   : config.feature_cache;
        cache = std::make_unique<FeatureCache>(
            FeatureCache::build(cp, model.vit(), data, config.image_folder, [&](int64_t done, int64_t total) {
                VisionTrainProgress p;
                p.phase = "features";
                p.step = done;
                p.total = total;
                p.elapsed_s = elapsed();
                return on_progress ? on_progress(p) : true;
            }));
    }
    TrainOptions o = config.train;
    if (config.stage == 1) o.train_only = {"proj.*"};                                 // CLIP and RWKV frozen
    if (config.stage == 2) o.freeze.insert(o.freeze.end(), {"vit.*", "rwkv.emb.*"});  // CLIP and emb frozen
    const bool vit_trains = config.stage == 0 && !config.freeze_vit;
    if (config.stage == 0 && config.freeze_vit) o.freeze.push_back("vit.*");
    model.rwkv().train(true);
    model.vit().train(vit_trains);
    model.proj().set_requires_grad(true);
    return run_training(
        model, model.state_dict(), o, config, std::to_string(config.stage), int64_t(data.size()),
        [&](const std::vector<int64_t>& idx) {
            return vision_batch_loss(model, tokenizer, data, idx, config, cache.get(), o.l2wrap);
        },
        elapsed, on_progress);
}

PatchLabels read_patch_labels(const std::string& path) {
    std::error_code ec;
    AVIARY_CHECK(fs::exists(path, ec) && !fs::is_directory(path, ec), "patch label file '", path, "' does not exist");
    json j;
    try {
        j = json::parse(std::ifstream(path));
    } catch (const json::exception& e) {
        AVIARY_FAIL("patch label file '", path, "' is not valid JSON (", e.what(), ")");
    }
    PatchLabels out;
    try {
        AVIARY_CHECK(j.is_object() && j.contains("grid") && j.contains("groups") && j.contains("items"), "'", path,
                     "' must be a JSON object with 'grid', 'groups' and 'items'");
        out.grid = j["grid"].get<int64_t>();
        AVIARY_CHECK(out.grid >= 1, "'", path, "': grid must be at least 1");
        for (const auto& g : j["groups"]) {
            out.groups.push_back(g.get<std::vector<std::string>>());
            AVIARY_CHECK(out.groups.back().size() >= 2, "'", path, "': every label group needs at least 2 classes");
        }
        AVIARY_CHECK(!out.groups.empty(), "'", path, "' has no label groups");
        const size_t G = out.groups.size(), P = size_t(out.grid * out.grid);
        for (const auto& it : j["items"]) {
            const std::string image = it.at("image").get<std::string>();
            const auto rows = it.at("labels").get<std::vector<std::vector<int64_t>>>();
            AVIARY_CHECK(rows.size() == P, "'", path, "', image '", image, "': expected ", P, " patch labels (grid ",
                         out.grid, "²), got ", rows.size());
            std::vector<int64_t> flat;
            flat.reserve(P * G);
            for (const auto& r : rows) {
                AVIARY_CHECK(r.size() == G, "'", path, "', image '", image, "': every patch needs ", G, " labels");
                for (size_t g = 0; g < G; ++g) {
                    AVIARY_CHECK(r[g] >= 0 && r[g] < int64_t(out.groups[g].size()), "'", path, "', image '", image,
                                 "': label ", r[g], " outside group ", g, " (", out.groups[g].size(), " classes)");
                    flat.push_back(r[g]);
                }
            }
            out.images.push_back(image);
            out.labels.push_back(std::move(flat));
        }
    } catch (const json::exception& e) {
        AVIARY_FAIL("patch label file '", path, "': ", e.what());
    }
    AVIARY_CHECK(!out.images.empty(), "patch label file '", path, "' has no items");
    return out;
}

static at::Tensor patch_label_loss(VisualRwkv& model, const PatchLabels& data, const std::vector<int64_t>& indices,
                                   const std::string& image_folder, const at::Tensor& head_w,
                                   const at::Tensor& head_b) {
    const int64_t B = int64_t(indices.size()), P = data.grid * data.grid, G = int64_t(data.groups.size());
    AVIARY_CHECK(P == model.patch_rows(), "patch labels on a ", data.grid, "×", data.grid, " grid, but the ViT has ",
                 model.patch_rows(), " patches");
    ClipPreprocess pre;
    pre.size = model.image_size();
    std::vector<at::Tensor> px;
    auto target = torch::empty({B, P, G}, torch::kInt64);
    auto ta = target.accessor<int64_t, 3>();
    for (int64_t b = 0; b < B; ++b) {
        const int64_t i = indices[b];
        px.push_back(load_clip_image(llava_image_path(image_folder, data.images[i]), pre));
        for (int64_t p = 0; p < P; ++p)
            for (int64_t g = 0; g < G; ++g) ta[b][p][g] = data.labels[i][p * G + g];
    }
    at::Tensor f = model.vit().features(torch::stack(px)).slice(1, 0, P);  // (B, P, C) patches, CLS dropped
    f = at::layer_norm(f, {f.size(-1)});
    at::Tensor logits = at::linear(f, head_w, head_b).to(at::kFloat);  // (B, P, Σ classes), fp32 under bf16 too
    at::Tensor loss = torch::zeros({});
    int64_t off = 0;
    for (int64_t g = 0; g < G; ++g) {
        const int64_t K = int64_t(data.groups[g].size());
        loss = loss + at::cross_entropy_loss(logits.slice(2, off, off + K).reshape({-1, K}),
                                             target.select(2, g).reshape({-1}));
        off += K;
    }
    return loss / double(G);
}

VisionTrainSummary pretrain_vit(VisualRwkv& model, const PatchLabels& data, const VisionTrainConfig& config,
                                const std::function<bool(const VisionTrainProgress&)>& on_progress) {
    AVIARY_CHECK(!config.out_dir.empty(), "training needs an output directory");
    AVIARY_CHECK(data.grid * data.grid == model.patch_rows(), "patch labels on a ", data.grid, "×", data.grid,
                 " grid, but the ViT has ", model.patch_rows(), " patches");
    fs::create_directories(config.out_dir);
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    int64_t classes = 0;
    for (const auto& g : data.groups) classes += int64_t(g.size());
    const int64_t C = model.vit().config().hidden;
    // the classification head lives only for this run (and its checkpoints); the saved model has no extra keys
    auto gen = at::make_generator<at::CPUGeneratorImpl>(config.train.seed + 3);
    at::Tensor head_w = at::normal(0.0, 0.02, {classes, C}, gen).requires_grad_(true);
    at::Tensor head_b = torch::zeros({classes}).requires_grad_(true);
    TensorList tensors = model.state_dict();
    tensors.push_back({"patch_head.weight", head_w});
    tensors.push_back({"patch_head.bias", head_b});
    TrainOptions o = config.train;
    o.train_only = {"vit.*", "patch_head.*"};
    model.vit().train(true);
    return run_training(
        model, tensors, o, config, "vit", int64_t(data.images.size()),
        [&](const std::vector<int64_t>& idx) {
            return patch_label_loss(model, data, idx, config.image_folder, head_w, head_b);
        },
        elapsed, on_progress);
}

}  // namespace aviary::vision
