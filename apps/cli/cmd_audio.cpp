// Audio commands (issue 5; ../shared/reference/multimodal_spec.md B.2–B.6):
// `aviary tag FILE… [--model M] [--top-k 5] [--json] [--stats]`: AudioSet tags of sound files (default: the shipped
//   demo model); --stats adds one JSON line of timings on stderr.
// `aviary train audio --data D [--clips DIR] [--eval-data E] --out OUT …`: trains AudioRWKV (balanced sampling, BCE,
//   mixup, SpecAugment; atomic checkpoints, --resume).
// `aviary eval audioset --model M --data D [--clips DIR] [--json]`: mAP (sklearn semantics), mAUC, d′.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/audio_train.h"
#include "aviary/audio/audioset.h"
#include "aviary/audio/tagger.h"
#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/process_stats.h"
#include "aviary/core/threads.h"
#include "cli_common.h"
#include "progress_bar.h"

namespace fs = std::filesystem;

namespace aviary::cli {
namespace {

std::string fmt(double v, int digits = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// Loads a data set (CSV + clip dir or AST JSON), reporting missing/unreadable clips on stderr (never fatal).
audio::ClipFeatures load_set(const std::string& data, const std::string& clips, const audio::LabelTable& labels,
                             const audio::AudioRwkvConfig& config, const char* what, bool progress) {
    audio::ClipList list = audio::read_clip_list(data, clips, labels);
    if (!list.missing.empty())
        std::fprintf(stderr, "%s: %zu of %zu listed clips are missing (first: %s)\n", what, list.missing.size(),
                     list.missing.size() + list.items.size(), list.missing[0].c_str());
    if (list.unknown_labels > 0)
        std::fprintf(stderr, "%s: %lld label MIDs are not in the class table (ignored)\n", what,
                     static_cast<long long>(list.unknown_labels));
    AVIARY_CHECK(!list.items.empty(), what, " '", data, "': none of the listed clips exist",
                 clips.empty() ? "" : " in '" + clips + "'");
    ProgressBar bar(progress);
    audio::ClipFeatures f = audio::load_clip_features(list, config, [&](int64_t d, int64_t t) {
        bar.update(double(d), double(t), std::string("loading ") + what);
        return true;
    });
    bar.finish();
    if (!f.failed.empty())
        std::fprintf(stderr, "%s: %zu clips could not be read (first: %s)\n", what, f.failed.size(),
                     f.failed[0].c_str());
    AVIARY_CHECK(!f.logmel.empty(), what, " '", data, "': no clip could be read");
    return f;
}

void register_tag(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("tag", "AudioSet tags of sound files (AudioRWKV; default: the shipped demo model)");
    struct Args {
        std::vector<std::string> files;
        std::string model;
        int64_t top_k = 5;
        bool json = false, stats = false;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("files", a->files, "Sound files (wav, flac, ogg, … any rate and channel count)")->required();
    sub->add_option("--model,-m", a->model, "AudioRWKV model (.safetensors); default: the shipped demo model");
    sub->add_option("--top-k,-k", a->top_k, "Labels to print per file")->check(CLI::Range(int64_t(1), int64_t(527)));
    sub->add_flag("--json", a->json, "One JSON object per file on stdout");
    sub->add_flag("--stats", a->stats,
                  "After the tags, one JSON line on stderr: load_s, audio_s, prefill_s, decode_s (0), ttft_s, tokens "
                  "(0: nothing generated), input_tokens, peak_rss_mb (times summed over the files)");
    sub->add_option("--threads", a->threads, "CPU threads (default: all)");
    sub->callback([&run, a] {
        run = [a] {
            using Clock = std::chrono::steady_clock;
            set_thread_count(a->threads);
            const std::string path = a->model.empty() ? audio::default_model_path() : a->model;
            AVIARY_CHECK(fs::exists(path), "model '", path, "' does not exist");
            const Clock::time_point t_load = Clock::now();
            audio::AudioRwkv model = audio::AudioRwkv::load(path);
            const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
            // Every file is tagged before anything is printed, so a bad file gives one error line and no output.
            std::vector<std::vector<audio::Tag>> all;
            audio::TagTimings timings;
            for (const auto& f : a->files) all.push_back(audio::tag_file(model, f, a->top_k, &timings));
            for (size_t i = 0; i < a->files.size(); ++i) {
                if (a->json) {
                    nlohmann::json tags = nlohmann::json::array();
                    for (const auto& t : all[i])
                        tags.push_back({{"index", t.index}, {"mid", t.mid}, {"label", t.name}, {"score", t.score}});
                    std::printf("%s\n", nlohmann::json({{"file", a->files[i]}, {"tags", tags}}).dump().c_str());
                } else {
                    std::printf("%s\n", a->files[i].c_str());
                    for (const auto& t : all[i]) std::printf("  %.4f  %s\n", t.score, t.name.c_str());
                }
            }
            std::fflush(stdout);
            if (a->stats) {
                // the keys of `vqa --stats` (DESIGN.md): a tagger runs one sequence-mode pass and decodes nothing
                const nlohmann::json j = {{"load_s", load_s},
                                          {"audio_s", timings.audio_s},
                                          {"prefill_s", timings.prefill_s},
                                          {"decode_s", 0.0},
                                          {"ttft_s", timings.ttft_s},
                                          {"tokens", 0},
                                          {"input_tokens", timings.input_tokens},
                                          {"peak_rss_mb", peak_rss_mb()}};
                std::fprintf(stderr, "%s\n", j.dump().c_str());
            }
            return 0;
        };
    });
}

void register_train_audio(CLI::App& app, Runner& run) {
    CLI::App* tr = app.get_subcommand("train");
    auto* sub =
        tr->add_subcommand("audio", "Train AudioRWKV on AudioSet-format data (segment CSV + clips or AST JSON)");
    struct Args {
        std::string data, clips, eval_data, eval_clips, out, labels, size = "tiny", init;
        double clip_seconds = 10.0;
        int64_t patch = 16, layers = 0;
        audio::AudioTrainOptions opt;
        bool resume = false;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--data", a->data, "Training list: segment CSV (with --clips) or AST JSON")->required();
    sub->add_option("--clips", a->clips, "Directory of Y{YTID}.wav clips for a segment CSV");
    sub->add_option("--eval-data", a->eval_data, "Held-out list for evaluation during/after training");
    sub->add_option("--eval-clips", a->eval_clips, "Clip directory of --eval-data (default: --clips)");
    sub->add_option("--out,-o", a->out, "Output directory (checkpoints/, train_log.jsonl, model.safetensors)")
        ->required();
    sub->add_option("--labels", a->labels, "class_labels_indices.csv (default: the shipped copy)");
    sub->add_option("--size", a->size, "tiny (D 192, 3 heads) or small (D 384, 6 heads)")
        ->check(CLI::IsMember({"tiny", "small"}));
    sub->add_option("--layers", a->layers, "Override the layer count (default 12)")->check(CLI::Range(1, 48));
    sub->add_option("--clip-seconds", a->clip_seconds, "Clip length the model takes")->check(CLI::Range(0.1, 60.0));
    sub->add_option("--patch", a->patch, "Patch size over (frames × mels)")->check(CLI::IsMember({4, 8, 16, 32}));
    sub->add_option("--init", a->init, "Start from this AudioRWKV model's weights");
    sub->add_option("--steps", a->opt.steps, "Optimizer steps")->check(CLI::PositiveNumber);
    sub->add_option("--batch", a->opt.batch, "Clips per step")->check(CLI::PositiveNumber);
    sub->add_option("--lr", a->opt.lr, "Peak learning rate (AdamW)")->check(CLI::PositiveNumber);
    sub->add_option("--lr-final", a->opt.lr_final, "Cosine floor")->check(CLI::NonNegativeNumber);
    sub->add_option("--warmup", a->opt.warmup, "Warm-up steps")->check(CLI::NonNegativeNumber);
    sub->add_option("--weight-decay", a->opt.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
    sub->add_option("--mixup-alpha", a->opt.mixup_alpha, "Beta(α, α) of the input mixup; 0: off")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--mixup-prob", a->opt.mixup_prob, "Share of batches mixed")->check(CLI::Range(0.0, 1.0));
    sub->add_option("--spec-time", a->opt.spec_time_width, "SpecAugment time stripe width bound (frames); 0: off")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--spec-freq", a->opt.spec_freq_width, "SpecAugment mel stripe width bound (bins); 0: off")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("!--no-balanced", a->opt.balanced, "Uniform instead of class-balanced sampling");
    sub->add_option("--seed", a->opt.seed, "Seed (weights, sampling, augmentation)");
    sub->add_option("--save-every", a->opt.save_every, "Steps between checkpoints (0: at the end)");
    sub->add_option("--eval-every", a->opt.eval_every, "Steps between evaluations (0: at the end)");
    sub->add_flag("--resume", a->resume, "Continue from the newest checkpoint in --out");
    sub->add_option("--threads", a->threads, "CPU threads (default: all)");
    add_precision_option(sub, a->opt.precision);
    sub->callback([&run, a] {
        run = [a] {
            set_thread_count(a->threads);
            audio::LabelTable labels =
                audio::read_class_labels(a->labels.empty() ? audio::default_class_labels_path() : a->labels);
            audio::AudioRwkvConfig config = a->size == "small" ? audio::AudioRwkvConfig::small(a->clip_seconds)
                                                               : audio::AudioRwkvConfig::tiny(a->clip_seconds);
            config.patch = a->patch;
            if (a->layers > 0) config.n_layer = a->layers;
            config.n_classes = int64_t(labels.classes.size());
            try {
                config.validate();
            } catch (const Error& e) {
                throw UsageError(e.what());
            }
            audio::AudioRwkv model(config, labels.classes, a->opt.seed);
            if (!a->init.empty()) model.load_state_dict(audio::AudioRwkv::load(a->init).state_dict());
            audio::ClipFeatures train = load_set(a->data, a->clips, labels, config, "training data", true);
            audio::ClipFeatures eval;
            if (!a->eval_data.empty())
                eval = load_set(a->eval_data, a->eval_clips.empty() ? a->clips : a->eval_clips, labels, config,
                                "eval data", true);
            std::fprintf(stderr, "AudioRWKV-%s: %lld parameters, %lld × %lld patches, %zu training clips, %zu eval\n",
                         a->size.c_str(), static_cast<long long>(model.parameter_count()),
                         static_cast<long long>(config.grid_t()), static_cast<long long>(config.grid_f()),
                         train.logmel.size(), eval.logmel.size());
            ProgressBar bar(true);
            auto result = audio::train_audio_model(
                model, train, eval, a->opt, a->out, a->resume, [&](const audio::AudioTrainProgress& p) {
                    std::string text = "loss " + fmt(p.loss) + " lr " + fmt(p.lr * 1e3, 3) + "e-3";
                    if (p.eval_map >= 0) text += " eval mAP " + fmt(p.eval_map);
                    bar.update(double(p.step), double(p.total), text);
                    return true;
                });
            bar.finish();
            nlohmann::json j = {
                {"start_step", result.start_step}, {"end_step", result.end_step}, {"model", result.final_model}};
            if (result.eval.classes_scored > 0) {
                j["eval_map"] = result.eval.map;
                j["eval_mauc"] = result.eval.mauc;
                j["eval_dprime"] = result.eval.dprime;
                j["eval_classes"] = result.eval.classes_scored;
            }
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

void register_eval_audioset(CLI::App& app, Runner& run) {
    CLI::App* ev = app.get_subcommand("eval");
    auto* sub = ev->add_subcommand("audioset", "mAP (scikit-learn semantics), mean AUC and d′ of an AudioRWKV model");
    struct Args {
        std::string model, data, clips, out;
        bool json = false, quiet = false;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--model,-m", a->model, "AudioRWKV model (.safetensors)")->required();
    sub->add_option("--data", a->data, "Segment CSV (with --clips) or AST JSON list")->required();
    sub->add_option("--clips", a->clips, "Directory of Y{YTID}.wav clips for a segment CSV");
    sub->add_option("--out", a->out, "Also write the per-class AP as JSON here");
    sub->add_flag("--json", a->json, "Print one JSON object");
    sub->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
    sub->add_option("--threads", a->threads, "CPU threads (default: all)");
    sub->callback([&run, a] {
        run = [a] {
            set_thread_count(a->threads);
            AVIARY_CHECK(fs::exists(a->model), "model '", a->model, "' does not exist");
            audio::AudioRwkv model = audio::AudioRwkv::load(a->model);
            audio::LabelTable labels = audio::label_table(model.labels());
            audio::ClipFeatures data = load_set(a->data, a->clips, labels, model.config(), "eval data", !a->quiet);
            ProgressBar bar(!a->quiet);
            auto m = audio::evaluate_tagging(model, data, 32, [&](int64_t d, int64_t t) {
                bar.update(double(d), double(t), "scoring");
                return true;
            });
            bar.finish();
            nlohmann::json j = {{"map", m.map},
                                {"mauc", m.mauc},
                                {"dprime", m.dprime},
                                {"clips", int64_t(data.logmel.size())},
                                {"classes_scored", m.classes_scored},
                                {"classes_skipped", m.classes_skipped}};
            if (!a->out.empty()) {
                nlohmann::json per = nlohmann::json::object();
                for (size_t c = 0; c < m.ap.size(); ++c)
                    if (!std::isnan(m.ap[c])) per[model.labels()[c].name] = m.ap[c];
                nlohmann::json full = j;
                full["ap"] = per;
                write_file_atomic(a->out, full.dump(1) + "\n");
            }
            if (a->json)
                std::printf("%s\n", j.dump().c_str());
            else
                std::printf("mAP %.4f  mAUC %.4f  d' %.3f  (%zu clips, %lld classes with positives)\n", m.map, m.mauc,
                            m.dprime, data.logmel.size(), static_cast<long long>(m.classes_scored));
            return 0;
        };
    });
}

}  // namespace

void register_audio(CLI::App& app, Runner& run) {
    register_tag(app, run);
    register_train_audio(app, run);
    register_eval_audioset(app, run);
}

}  // namespace aviary::cli
