// AudioRWKV training loop (../shared/reference/multimodal_spec.md B.2 "Training"): class-balanced sampling, BCE,
// SpecAugment stripes and HTS-AT mixup (inputs only) on the BatchNorm'd log-mel; core's Trainer does AdamW,
// warm-up + cosine schedule and clipping. Every random draw comes from an RNG seeded by (seed, step), so a resumed
// run repeats the uninterrupted one. Checkpoints: core's (train_checkpoint.cpp), with the model's file metadata.
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "aviary/audio/audio_train.h"
#include "aviary/core/error.h"
#include "aviary/core/trainer.h"

namespace fs = std::filesystem;

namespace aviary::audio {

namespace {

std::mt19937_64 step_rng(uint64_t seed, uint64_t stream, int64_t step) {
    std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(stream), uint32_t(step), uint32_t(step >> 32)};
    return std::mt19937_64(seq);
}

at::Tensor stack_features(const ClipFeatures& data, const std::vector<int64_t>& rows, int64_t frames, int64_t mels) {
    at::Tensor x = torch::empty({int64_t(rows.size()), frames, mels}, torch::kFloat);
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& f = data.logmel[size_t(rows[i])];
        AVIARY_CHECK(int64_t(f.size()) == frames * mels, "clip '", data.paths[size_t(rows[i])], "' has ", f.size(),
                     " features, expected ", frames, " × ", mels);
        std::memcpy(x[int64_t(i)].data_ptr<float>(), f.data(), f.size() * sizeof(float));
    }
    return x;
}

at::Tensor stack_targets(const ClipFeatures& data, const std::vector<int64_t>& rows, int64_t n_classes) {
    at::Tensor y = torch::zeros({int64_t(rows.size()), n_classes}, torch::kFloat);
    auto ya = y.accessor<float, 2>();
    for (size_t i = 0; i < rows.size(); ++i)
        for (int64_t c : data.labels[size_t(rows[i])]) ya[int64_t(i)][c] = 1.0f;
    return y;
}

// Class-balanced queue (HTS-AT): round r visits every class that has clips once, in an order drawn from (seed, r);
// each visit takes a clip of that class drawn from (seed, position). Position p = step·batch + i.
std::vector<int64_t> balanced_rows(const std::vector<std::vector<int64_t>>& by_class, uint64_t seed, int64_t step,
                                   int64_t batch) {
    std::vector<int64_t> classes;
    for (size_t c = 0; c < by_class.size(); ++c)
        if (!by_class[c].empty()) classes.push_back(int64_t(c));
    const int64_t nc = int64_t(classes.size());
    std::vector<int64_t> rows;
    int64_t cached_round = -1;
    std::vector<int64_t> order;
    for (int64_t i = 0; i < batch; ++i) {
        const int64_t p = step * batch + i, round = p / nc;
        if (round != cached_round) {
            order = classes;
            auto rng = step_rng(seed, 1, round);
            std::shuffle(order.begin(), order.end(), rng);
            cached_round = round;
        }
        const auto& clips = by_class[size_t(order[size_t(p % nc)])];
        auto rng = step_rng(seed, 2, p);
        rows.push_back(clips[size_t(rng() % clips.size())]);
    }
    return rows;
}

// A training checkpoint through core's protocol (train_checkpoint.cpp: temporary directory renamed whole, trainer.json
// last, the newest two plus the best kept). Its model.safetensors is a complete model file (`aviary tag --model`
// takes it). The data position stays 0: every draw comes from (seed, step), nothing else to restore.
void save_checkpoint(const std::string& out_dir, const AudioRwkv& model, const Trainer& trainer, int64_t step,
                     double loss, double elapsed) {
    CheckpointInfo info;
    info.step = step;
    info.loss = loss;
    info.elapsed_s = elapsed;
    const std::string model_json =
        nlohmann::json{{"kind", "audio-rwkv"}, {"config", nlohmann::json::parse(model.config().to_json())}}.dump();
    TensorList weights;
    for (const auto& t : model.state_dict()) weights.push_back({t.name, t.tensor.detach()});
    save_train_checkpoint(out_dir, weights, model_json, trainer, info, /*keep_last=*/2, model.file_metadata());
}

}  // namespace

std::vector<double> predict_scores(AudioRwkv& model, const ClipFeatures& data, int64_t batch,
                                   const std::function<bool(int64_t, int64_t)>& on_progress) {
    torch::NoGradGuard no_grad;
    model.set_training(false);
    const auto& c = model.config();
    const int64_t n = int64_t(data.logmel.size());
    std::vector<double> out;
    out.reserve(size_t(n * c.n_classes));
    for (int64_t b0 = 0; b0 < n; b0 += batch) {
        std::vector<int64_t> rows;
        for (int64_t i = b0; i < std::min(n, b0 + batch); ++i) rows.push_back(i);
        at::Tensor p = torch::sigmoid(model.forward(stack_features(data, rows, c.frames(), c.n_mels)))
                           .to(torch::kDouble)
                           .contiguous();
        out.insert(out.end(), p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
        if (on_progress && !on_progress(int64_t(rows.back() + 1), n)) break;
    }
    return out;
}

TaggingMetrics evaluate_tagging(AudioRwkv& model, const ClipFeatures& data, int64_t batch,
                                const std::function<bool(int64_t, int64_t)>& on_progress) {
    AVIARY_CHECK(!data.logmel.empty(), "evaluation set holds no readable clips");
    const int64_t nc = model.config().n_classes;
    std::vector<double> scores = predict_scores(model, data, batch, on_progress);
    const size_t n = scores.size() / size_t(nc);
    std::vector<int> target(n * size_t(nc), 0);
    for (size_t i = 0; i < n; ++i)
        for (int64_t c : data.labels[i]) target[i * size_t(nc) + size_t(c)] = 1;
    return tagging_metrics(target, scores, nc);
}

AudioTrainResult train_audio_model(AudioRwkv& model, const ClipFeatures& train, const ClipFeatures& eval,
                                   const AudioTrainOptions& o, const std::string& out_dir, bool resume,
                                   const std::function<bool(const AudioTrainProgress&)>& on_progress) {
    const auto& c = model.config();
    AVIARY_CHECK(!train.logmel.empty(), "training set holds no readable clips");
    AVIARY_CHECK(o.steps > 0 && o.batch > 0, "steps and batch must be positive, got ", o.steps, ", ", o.batch);
    fs::create_directories(out_dir);
    std::vector<std::vector<int64_t>> by_class(size_t(c.n_classes));
    std::vector<int64_t> all;
    for (size_t i = 0; i < train.labels.size(); ++i) {
        all.push_back(int64_t(i));
        for (int64_t k : train.labels[i]) by_class[size_t(k)].push_back(int64_t(i));
    }
    TrainOptions to;
    to.steps = o.steps;
    to.batch = o.batch;
    to.lr = o.lr;
    to.lr_final = o.lr_final;
    to.warmup = o.warmup;
    to.weight_decay = o.weight_decay;
    to.grad_clip = o.grad_clip;
    to.beta1 = 0.9;
    to.beta2 = 0.999;
    to.l2wrap = false;
    to.seed = o.seed;
    to.precision = o.precision;
    Trainer trainer(model.named_parameters(), to);
    AudioTrainResult result;
    double elapsed0 = 0;
    clear_interrupted_writes(out_dir);
    seed_training_rng(o.seed);  // a checkpoint's RNG state replaces it below
    if (resume) {
        const std::string ck = latest_train_checkpoint(out_dir);
        if (!ck.empty()) elapsed0 = load_train_checkpoint(ck, model.state_dict(), trainer).elapsed_s;
    }
    result.start_step = trainer.step_count();
    const fs::path log_path = fs::path(out_dir) / "train_log.jsonl";
    restart_train_log(log_path.string(), result.start_step);  // each step once, also after a kill
    std::ofstream log(log_path, std::ios::app);
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return elapsed0 + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const int64_t F = c.frames(), M = c.n_mels;
    double last_loss = 0;
    while (trainer.step_count() < o.steps) {
        const int64_t step = trainer.step_count();
        std::vector<int64_t> rows;
        if (o.balanced) {
            rows = balanced_rows(by_class, o.seed, step, o.batch);
        } else {
            auto rng = step_rng(o.seed, 3, step);
            for (int64_t i = 0; i < o.batch; ++i) rows.push_back(all[size_t(rng() % all.size())]);
        }
        auto rng = step_rng(o.seed, 4, step);
        std::uniform_real_distribution<double> unif(0, 1);
        model.set_training(true);
        StepResult sr = trainer.step([&](int64_t) {
            at::Tensor x = model.normalise(stack_features(train, rows, F, M));  // (B, F, M), BN over mel bins
            at::Tensor y = stack_targets(train, rows, c.n_classes);
            // SpecAugment: zero stripes of width in [0, W) along time and mel (after BN, as HTS-AT)
            at::Tensor mask = torch::ones({o.batch, F, M}, torch::kFloat);
            auto ma = mask.accessor<float, 3>();
            for (int64_t b = 0; b < o.batch; ++b) {
                for (int64_t s = 0; s < o.spec_time_stripes && o.spec_time_width > 0; ++s) {
                    const int64_t w = int64_t(rng() % uint64_t(o.spec_time_width)), t0s = int64_t(rng() % uint64_t(F));
                    for (int64_t t = t0s; t < std::min(F, t0s + w); ++t)
                        for (int64_t m = 0; m < M; ++m) ma[b][t][m] = 0;
                }
                for (int64_t s = 0; s < o.spec_freq_stripes && o.spec_freq_width > 0; ++s) {
                    const int64_t w = int64_t(rng() % uint64_t(o.spec_freq_width)), m0 = int64_t(rng() % uint64_t(M));
                    for (int64_t t = 0; t < F; ++t)
                        for (int64_t m = m0; m < std::min(M, m0 + w); ++m) ma[b][t][m] = 0;
                }
            }
            x = x * mask;
            // mixup (HTS-AT do_mixup): x_b ← λ_b·x_b + (1 − λ_b)·x_{B−1−b}, λ ~ Beta(α, α); targets unchanged
            if (o.mixup_alpha > 0 && unif(rng) < o.mixup_prob) {
                std::gamma_distribution<double> gam(o.mixup_alpha, 1.0);
                at::Tensor lam = torch::empty({o.batch, 1, 1}, torch::kFloat);
                for (int64_t b = 0; b < o.batch; ++b) {
                    const double g1 = gam(rng), g2 = gam(rng);
                    lam[b][0][0] = float(g1 / (g1 + g2 + 1e-12));
                }
                x = lam * x + (1 - lam) * x.flip({0});
            }
            // BCE on the sigmoid outputs, in fp32 also under bf16 training
            at::Tensor logits = model.forward_normalised(x).to(torch::kFloat);
            return torch::binary_cross_entropy_with_logits(logits, y);
        });
        last_loss = sr.loss;
        AudioTrainProgress pr;
        pr.step = trainer.step_count();
        pr.total = o.steps;
        pr.loss = sr.loss;
        pr.lr = sr.lr;
        pr.grad_norm = sr.grad_norm;
        pr.elapsed_s = elapsed();
        const bool do_eval =
            !eval.logmel.empty() && o.eval_every > 0 && pr.step % o.eval_every == 0 && pr.step < o.steps;
        if (do_eval) {
            result.eval = evaluate_tagging(model, eval);
            pr.eval_map = result.eval.map;
        }
        nlohmann::json lj = {{"step", pr.step},
                             {"loss", pr.loss},
                             {"lr", pr.lr},
                             {"grad_norm", pr.grad_norm},
                             {"elapsed_s", pr.elapsed_s}};
        if (do_eval) lj["eval_map"] = pr.eval_map;
        log << lj.dump() << "\n" << std::flush;
        const bool go_on = on_progress ? on_progress(pr) : true;
        if (o.save_every > 0 && pr.step % o.save_every == 0 && pr.step < o.steps)
            save_checkpoint(out_dir, model, trainer, pr.step, sr.loss, pr.elapsed_s);
        if (!go_on) {
            save_checkpoint(out_dir, model, trainer, pr.step, sr.loss, pr.elapsed_s);
            result.stopped = true;
            break;
        }
    }
    result.end_step = trainer.step_count();
    model.set_training(false);
    if (!result.stopped) {
        save_checkpoint(out_dir, model, trainer, result.end_step, last_loss, elapsed());
        if (!eval.logmel.empty()) result.eval = evaluate_tagging(model, eval);
        result.final_model = (fs::path(out_dir) / "model.safetensors").string();
        model.save(result.final_model);
    }
    return result;
}

}  // namespace aviary::audio
