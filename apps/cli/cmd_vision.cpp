// `aviary vqa [--model M] [--clip C] [--proj P] --image FILE --question "…" [--stats]`: streams a VisualRWKV answer
// (the shipped demo model when --model is left out); --stats adds one JSON line of timings on stderr.
// `aviary train vision --stage 0|1|2 …`: LLaVA-format training (stage 1 proj only, stage 2 RWKV + proj, stage 0
// everything from scratch). `aviary eval vqa --data …`: accuracy and POPE-style yes/no F1. Library:
// aviary::vision (vision/include/aviary/vision/*.h).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/atomic_file.h"
#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"
#include "aviary/core/model_init.h"
#include "aviary/core/process_stats.h"
#include "aviary/core/threads.h"
#include "aviary/vision/image.h"
#include "aviary/vision/visual_rwkv.h"
#include "aviary/vision/vision_train.h"
#include "aviary/vision/vqa_eval.h"
#include "cli_common.h"
#include "progress_bar.h"

namespace fs = std::filesystem;

namespace aviary::cli {
namespace {

// Ctrl-C / SIGTERM during `train vision`: the current step finishes, the model is saved, the command ends.
volatile std::sig_atomic_t g_vision_interrupted = 0;
extern "C" void on_vision_signal(int) {
    g_vision_interrupted = 1;
}

struct VisionModelArgs {
    std::string model, clip, proj, vocab, tokenizer;
    std::string dtype = "auto";  // inference: the file's precision; training loads fp32 whatever this says
    int threads = 0;
};

void add_vision_model_options(CLI::App* sub, VisionModelArgs& a, const char* model_help) {
    sub->add_option("--model", a.model, model_help);
    sub->add_option("--clip", a.clip,
                    "CLIP vision weights (HF/OpenAI safetensors or .pth, or a VisualRWKV "
                    "*_visual.pth) when --model holds only the RWKV");
    sub->add_option("--proj", a.proj, "Projector weights (proj.weight) when neither --model nor --clip has them");
    sub->add_option("--vocab", a.vocab, "World vocabulary file (default: the installed one)");
    sub->add_option("--tokenizer", a.tokenizer,
                    "world | byte (default: the model's metadata, else byte for <= 256 ids)")
        ->check(CLI::IsMember({"world", "byte"}));
    sub->add_option("--threads", a.threads, "CPU threads (default: $AVIARY_THREADS or all cores)")
        ->check(CLI::Range(0, 1024));
}

// Inference keeps the weights in --dtype (default: the file's precision, so a bf16 file is not widened); training
// passes "fp32" (fp32 master weights).
vision::VisualRwkv load_visual(const VisionModelArgs& a, const std::string& dtype) {
    set_thread_count(a.threads);
    const std::string path = a.model.empty() ? vision::default_model_path() : a.model;
    ModelOptions options;
    options.dtype = dtype;
    options.cpu_engine.threads = a.threads;
    return vision::VisualRwkv::load(path, a.clip, a.proj, options);
}

// --dtype of the inference commands (vqa, eval vqa).
void add_dtype_option(CLI::App* sub, VisionModelArgs& a) {
    sub->add_option("--dtype", a.dtype, "Weights in memory: auto (the file's precision: bf16 stays bf16) | fp32 | bf16")
        ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
}

// --position when given, else the position the model was trained with (its metadata), else middle (v6 eval).

at::Tensor image_for(const vision::VisualRwkv& m, const std::string& path) {
    vision::ClipPreprocess pre;
    pre.size = m.image_size();
    return vision::load_clip_image(path, pre);
}

}  // namespace

void register_vision(CLI::App& app, Runner& run) {
    // ---- aviary vqa ----
    {
        auto* sub = app.add_subcommand("vqa", "Answer a question about an image with a VisualRWKV model (streams)");
        struct Args {
            VisionModelArgs m;
            std::string image, question, position;
            int max_tokens = 128;
            bool stats = false;
        };
        auto a = std::make_shared<Args>();
        add_vision_model_options(sub, a->m,
                                 "VisualRWKV weights (rwkv./vit./proj. in one file, or a plain RWKV "
                                 "with --clip); default: the shipped demo model");
        add_dtype_option(sub, a->m);
        sub->add_option("--image", a->image, "Image file (any format OpenCV reads)")->required();
        sub->add_option("--question,-q", a->question, "The question")->required();
        sub->add_option("--max-tokens", a->max_tokens, "Longest answer")->check(CLI::Range(1, 4096));
        sub->add_option(
               "--position", a->position,
               "Image place in the prompt: first | middle | last (default: the model's training position, else middle)")
            ->check(CLI::IsMember({"first", "middle", "last"}));
        sub->add_flag("--stats", a->stats,
                      "After the answer, one JSON line on stderr: load_s, image_s, prefill_s, decode_s, ttft_s, "
                      "tokens, peak_rss_mb");
        sub->callback([a, &run] {
            run = [a] {
                using Clock = std::chrono::steady_clock;
                if (a->question.find_first_not_of(" \t\r\n") == std::string::npos)
                    throw UsageError("--question is empty");
                const Clock::time_point t_load = Clock::now();
                auto model = load_visual(a->m, a->m.dtype);
                const auto tokenizer = vision::tokenizer_for(model, a->m.tokenizer, a->m.vocab);
                vision::AnswerOptions o;
                o.started = Clock::now();  // image_s and ttft_s count the image's decoding and preprocessing
                const double load_s = std::chrono::duration<double>(o.started - t_load).count();
                at::Tensor px = image_for(model, a->image);
                o.max_tokens = a->max_tokens;
                o.position = vision::image_position_for(model, a->position);
                auto r = vision::answer_question(model, *tokenizer, px, a->question, o, [](const std::string& piece) {
                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                    std::fflush(stdout);
                });
                std::fputc('\n', stdout);
                std::fflush(stdout);
                if (a->stats) {
                    const auto& t = r.timings;
                    nlohmann::json j = {{"load_s", load_s},
                                        {"image_s", t.image_s},
                                        {"prefill_s", t.prefill_s},
                                        {"decode_s", t.decode_s},
                                        {"ttft_s", t.ttft_s},
                                        {"tokens", r.tokens},
                                        {"peak_rss_mb", peak_rss_mb()}};
                    // The compute floor of the first token: its FLOPs ÷ the fastest GEMM rate measured now for these
                    // weights (the engine's paths: oneDNN or the BLAS blocks, whichever is faster here, whatever the
                    // prefill ran; CLIP's matmuls go to the same units through LibTorch).
                    if (auto engine = shared_cpu_engine(model.rwkv())) {
                        const double gflops = engine->measure_fastest_gemm_gflops().second;
                        const double floor_s = t.ttft_flops / (gflops * 1e9);
                        j["ttft_gflop"] = t.ttft_flops / 1e9;
                        j["gemm_gflops"] = gflops;
                        j["ttft_floor_s"] = floor_s;
                        j["ttft_over_floor"] = t.ttft_s / floor_s;
                    }
                    std::fprintf(stderr, "%s\n", j.dump().c_str());
                }
                return 0;
            };
        });
    }
    // ---- aviary train vision ----
    if (CLI::App* tr = app.get_subcommand("train")) {
        auto* sub = tr->add_subcommand("vision",
                                       "Train VisualRWKV on LLaVA-format data (stage 1: proj; stage 2: "
                                       "RWKV + proj; stage 0: everything, from scratch)");
        struct Args {
            VisionModelArgs m;
            int stage = 1;
            std::string data, images, out, position, cache, new_rwkv, new_vit;
            int64_t steps = 100, batch = 0, ctx_len = 0, grad_accum = 1, warmup = -1, save_every = 0;
            double lr = 0, lr_final = -1;
            uint64_t seed = 42;
            int keep_last = 2;
            bool quiet = false, resume = false, vit_pretrain = false, freeze_vit = false;
            TrainPrecision precision = TrainPrecision::Auto;
        };
        auto a = std::make_shared<Args>();
        add_vision_model_options(sub, a->m,
                                 "VisualRWKV weights to start from (stage 1/2; stage 0 may start fresh "
                                 "with --new-rwkv/--new-vit)");
        sub->add_option("--stage", a->stage, "0 | 1 | 2")->required()->check(CLI::Range(0, 2));
        sub->add_option("--data", a->data, "LLaVA JSON (or JSONL) with conversations and <image>")->required();
        sub->add_option("--image-folder", a->images, "Folder the items' image paths are relative to");
        sub->add_option("--out,-o", a->out, "Output directory (model.safetensors, train_log.jsonl)")->required();
        sub->add_option("--steps", a->steps, "Optimizer steps")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
        sub->add_option("--batch", a->batch, "Samples per micro-batch (default 8)");
        sub->add_option("--grad-accum", a->grad_accum, "Micro-batches per step")->check(CLI::Range(1, 4096));
        sub->add_option("--ctx-len", a->ctx_len, "Longest sequence (default: the stage's 1024 / 2048)");
        sub->add_option("--lr", a->lr, "Initial lr (default: the stage's: 1e-3 / 2e-5)");
        sub->add_option("--lr-final", a->lr_final, "Final lr of the cosine (default: the stage's 1e-5 / 2e-5)");
        sub->add_option("--warmup", a->warmup, "Warm-up steps (default 0; stage 0: 20)");
        sub->add_option("--position", a->position,
                        "Image place: first | middle | last (default: stage 1 first, "
                        "stage 2 middle)")
            ->check(CLI::IsMember({"first", "middle", "last"}));
        sub->add_option("--feature-cache", a->cache, "CLIP feature cache file (default OUT/feature_cache.safetensors)");
        sub->add_option("--new-rwkv", a->new_rwkv,
                        "Stage 0 from scratch: RWKV-6 'LAYERS,WIDTH,VOCAB' (e.g. 2,128,256)");
        sub->add_option(
            "--new-vit", a->new_vit,
            "Stage 0 from scratch: ViT 'LAYERS,WIDTH,PATCH,IMAGE[,HEADS]' (e.g. 3,128,8,64; heads default WIDTH/64)");
        sub->add_option("--seed", a->seed, "Seed (data order, fresh weights)");
        sub->add_option("--save-every", a->save_every, "Checkpoint every N steps (0: only when stopped and at the end)")
            ->check(CLI::NonNegativeNumber);
        sub->add_option("--keep-last", a->keep_last, "Checkpoints kept besides the best")->check(CLI::PositiveNumber);
        sub->add_flag("--resume", a->resume, "Continue from the newest checkpoint in --out (same data order)");
        sub->add_flag("--vit-pretrain", a->vit_pretrain,
                      "Stage 0: pretrain only the ViT on per-patch labels (--data is a patch label JSON, see "
                      "docs/VISION.md) — a stand-in for CLIP pretraining");
        sub->add_flag("--freeze-vit", a->freeze_vit, "Stage 0: keep the ViT frozen (train RWKV, embedding and proj)");
        sub->add_flag("--quiet", a->quiet, "No progress on stderr");
        add_precision_option(sub, a->precision);
        sub->callback([a, &run] {
            run = [a] {
                if (!latest_train_checkpoint(a->out).empty() && !a->resume)
                    throw UsageError("'" + a->out +
                                     "' already holds checkpoints: add --resume to continue, or choose another --out");
                auto ints = [](const std::string& s, size_t n, const char* what) {
                    std::vector<int64_t> v;
                    std::stringstream ss(s);
                    for (std::string x; std::getline(ss, x, ',');) {
                        try {
                            v.push_back(std::stoll(x));
                        } catch (...) {
                            throw UsageError(std::string(what) + " '" + s + "' must be comma-separated integers");
                        }
                    }
                    if (v.size() != n)
                        throw UsageError(std::string(what) + " '" + s + "' needs " + std::to_string(n) + " numbers");
                    return v;
                };
                vision::VisualRwkv model;
                const bool fresh = !a->new_rwkv.empty() || !a->new_vit.empty();
                if (fresh) {
                    if (a->stage != 0) throw UsageError("--new-rwkv/--new-vit start from scratch: only with --stage 0");
                    if (a->new_rwkv.empty() || a->new_vit.empty() || !a->m.model.empty())
                        throw UsageError("from scratch needs both --new-rwkv and --new-vit, and no --model");
                    set_thread_count(a->m.threads);
                    auto r = ints(a->new_rwkv, 3, "--new-rwkv");
                    const bool with_heads = std::count(a->new_vit.begin(), a->new_vit.end(), ',') == 4;
                    auto v = ints(a->new_vit, with_heads ? 5 : 4, "--new-vit");
                    Model rw =
                        Model::from_tensors(init_weights(init_config(int(r[0]), int(r[1]), 6, int(r[2])), a->seed));
                    vision::ClipVisionConfig vc;
                    vc.layers = v[0];
                    vc.hidden = v[1];
                    vc.heads = with_heads ? v[4] : std::max<int64_t>(1, v[1] / 64);
                    if (vc.heads < 1) throw UsageError("--new-vit: HEADS must be at least 1");
                    vc.intermediate = 4 * v[1];
                    vc.patch = v[2];
                    vc.image_size = v[3];
                    auto vit = vision::ClipVision::create(vc, a->seed + 1);
                    torch::manual_seed(a->seed + 2);
                    const double bound = 1.0 / std::sqrt(double(vc.hidden));  // nn.Linear init
                    at::Tensor proj = torch::rand({r[1], vc.hidden}) * (2 * bound) - bound;
                    model = vision::VisualRwkv::from_parts(std::move(rw), std::move(vit), proj);
                } else {
                    if (a->m.model.empty())
                        throw UsageError("--model is required (or --new-rwkv/--new-vit with --stage 0)");
                    model = load_visual(a->m, "fp32");
                }
                if ((a->vit_pretrain || a->freeze_vit) && a->stage != 0)
                    throw UsageError("--vit-pretrain and --freeze-vit belong to --stage 0");
                if (a->vit_pretrain && a->freeze_vit)
                    throw UsageError("--vit-pretrain trains only the ViT: it cannot be combined with --freeze-vit");
                const auto tokenizer = vision::tokenizer_for(model, a->m.tokenizer, a->m.vocab);
                vision::PatchLabels patches;
                std::vector<vision::LlavaSample> data;
                if (a->vit_pretrain)
                    patches = vision::read_patch_labels(a->data);
                else
                    data = vision::read_llava(a->data);
                vision::VisionTrainConfig c = vision::stage_defaults(a->stage);
                c.freeze_vit = a->freeze_vit;
                c.train.steps = a->steps;
                c.train.batch = a->batch > 0 ? a->batch : 8;
                c.train.grad_accum = a->grad_accum;
                c.train.seed = a->seed;
                c.train.precision = a->precision;
                if (a->ctx_len > 0) c.train.ctx_len = a->ctx_len;
                if (a->lr > 0) c.train.lr = a->lr;
                if (a->lr_final >= 0) c.train.lr_final = a->lr_final;
                if (a->warmup >= 0) c.train.warmup = a->warmup;
                if (!a->position.empty()) c.position = vision::parse_image_position(a->position);
                c.image_folder = a->images;
                c.out_dir = a->out;
                c.feature_cache = a->cache;
                c.metadata["tokenizer"] = tokenizer->kind();
                c.save_every = a->save_every;
                c.keep_last = a->keep_last;
                c.resume = a->resume;
                ProgressBar bar(!a->quiet);
                std::string phase;
                std::signal(SIGINT, on_vision_signal);
                std::signal(SIGTERM, on_vision_signal);
                auto on_progress = [&](const vision::VisionTrainProgress& p) {
                    if (p.phase != phase) {
                        bar.finish();
                        bar = ProgressBar(!a->quiet);
                        phase = p.phase;
                    }
                    char text[160];
                    if (p.phase == "features")
                        std::snprintf(text, sizeof text, "CLIP features %lld/%lld", (long long)p.step,
                                      (long long)p.total);
                    else
                        std::snprintf(text, sizeof text, "step %lld/%lld loss %.4f lr %.2e", (long long)p.step,
                                      (long long)p.total, p.loss, p.lr);
                    bar.update(double(p.step), double(p.total), text);
                    return g_vision_interrupted == 0;
                };
                auto summary = a->vit_pretrain ? vision::pretrain_vit(model, patches, c, on_progress)
                                               : vision::train_vision(model, *tokenizer, data, c, on_progress);
                std::signal(SIGINT, SIG_DFL);
                std::signal(SIGTERM, SIG_DFL);
                bar.finish();
                if (summary.start_step > 0)
                    std::fprintf(stderr, "resumed at step %lld\n", static_cast<long long>(summary.start_step));
                if (summary.stopped)
                    std::fprintf(stderr,
                                 "interrupted after %zu steps; a checkpoint and the model are saved (--resume "
                                 "continues)\n",
                                 summary.losses.size());
                std::fprintf(stderr, "stage %s: trained %lld parameters in %zu tensors; final loss %.4f; wrote %s\n",
                             a->vit_pretrain ? "0 (ViT pretraining)" : std::to_string(a->stage).c_str(),
                             (long long)summary.trainable_params, summary.trained.size(),
                             summary.losses.empty() ? 0.0 : summary.losses.back(), summary.final_model.c_str());
                return 0;
            };
        });
    }
    // ---- aviary eval vqa ----
    if (CLI::App* ev = app.get_subcommand("eval")) {
        auto* sub = ev->add_subcommand("vqa",
                                       "VQA accuracy (exact match) and POPE-style yes/no F1 of a VisualRWKV "
                                       "model");
        struct Args {
            VisionModelArgs m;
            std::string data, images, out, position;
            int64_t limit = 0;
            int max_tokens = 16;
            bool quiet = false;
        };
        auto a = std::make_shared<Args>();
        add_vision_model_options(sub, a->m, "VisualRWKV weights (default: the shipped demo model)");
        add_dtype_option(sub, a->m);
        sub->add_option("--data", a->data, "Questions: JSONL {image, question, answer} or LLaVA JSON")->required();
        sub->add_option("--image-folder", a->images, "Folder the image paths are relative to (default: the data's)");
        sub->add_option("--out,-o", a->out, "Write every answer and the scores here (JSON)");
        sub->add_option("--limit", a->limit, "Score only the first N questions");
        sub->add_option("--max-tokens", a->max_tokens, "Longest answer")->check(CLI::Range(1, 4096));
        sub->add_option("--position", a->position, "first | middle | last (default: as for vqa)")
            ->check(CLI::IsMember({"first", "middle", "last"}));
        sub->add_flag("--quiet", a->quiet, "No progress on stderr");
        sub->callback([a, &run] {
            run = [a] {
                auto items = vision::read_vqa(a->data);
                if (a->limit > 0 && int64_t(items.size()) > a->limit) items.resize(size_t(a->limit));
                const std::string folder = a->images.empty() ? fs::path(a->data).parent_path().string() : a->images;
                auto model = load_visual(a->m, a->m.dtype);
                const auto tokenizer = vision::tokenizer_for(model, a->m.tokenizer, a->m.vocab);
                vision::AnswerOptions o;
                o.max_tokens = a->max_tokens;
                o.position = vision::image_position_for(model, a->position);
                std::vector<std::string> preds, refs;
                nlohmann::json answers = nlohmann::json::array();
                ProgressBar bar(!a->quiet);
                for (size_t i = 0; i < items.size(); ++i) {
                    const auto& it = items[i];
                    const std::string path = folder.empty() ? it.image : (fs::path(folder) / it.image).string();
                    auto r = vision::answer_question(model, *tokenizer, image_for(model, path), it.question, o);
                    preds.push_back(r.text);
                    refs.push_back(it.answer);
                    answers.push_back(
                        {{"id", it.id}, {"question", it.question}, {"answer", r.text}, {"reference", it.answer}});
                    bar.update(double(i + 1), double(items.size()), "questions");
                }
                bar.finish();
                auto s = vision::score_vqa(preds, refs);
                nlohmann::json j = {{"questions", s.total}, {"correct", s.correct}, {"accuracy", s.accuracy}};
                if (s.yes_no) {
                    j["pope_f1"] = s.f1;
                    j["pope_precision"] = s.precision;
                    j["pope_recall"] = s.recall;
                    j["yes_ratio"] = s.yes_ratio;
                }
                if (!a->out.empty()) {
                    nlohmann::json full = j;
                    full["answers"] = answers;
                    const std::string text = full.dump(1) + "\n";
                    AtomicFile f(a->out);
                    f.write(text.data(), text.size());
                    f.commit();
                }
                std::printf("%s\n", j.dump().c_str());
                return 0;
            };
        });
    }
}

}  // namespace aviary::cli
