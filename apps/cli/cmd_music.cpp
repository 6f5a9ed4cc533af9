// `aviary music [--model M] [--count N --seed S --meter 6/8 --key D --length 1/8] --out DIR [--midi --wav --svg]`:
// generates ABC tunes with a byte-level music model (official sampling T=1.0, top-k 8, top-p 0.8), writes
// tune_001.abc … and summary.json (checker + abc2midi verdicts), and optionally MIDI/WAV/SVG via the Debian tools.
// `aviary eval music-loss --model M [--model M2 …] --data D --out PREFIX`: loss by byte position (CSV + PNG).
// `aviary train music --data D --config C.json --out DIR`: trains a byte-level ABC model (music_train.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/threads.h"
#include "aviary/core/train_data.h"
#include "aviary/core/trainer.h"
#include "aviary/music/abc.h"
#include "aviary/music/abc_tools.h"
#include "aviary/music/music.h"
#include "aviary/music/music_train.h"
#include "cli_common.h"
#include "position_loss_output.h"

namespace fs = std::filesystem;

namespace aviary::cli {
namespace {

// A tune or listing written atomically (atomic_file.h): a reader never sees half a file, a failure leaves none.
void write_text(const fs::path& p, const std::string& text) {
    write_file_atomic(p.string(), text);
}

// `aviary train music`: the shared token-LM trainer on framed tunes, configured by one JSON file; the run
// folder gets config.json (every setting), checkpoints/, train_log.jsonl, model.safetensors and summary.json
// (training and validation loss).
void register_train_music(CLI::App& app, Runner& run) {
    CLI::App* tr = app.get_subcommand("train");
    auto* sub = tr->add_subcommand("music", "Train a byte-level ABC music model from a JSON config");
    struct Args {
        std::string data, config, out, validation, device = "cpu";
        bool resume = false, quiet = false;
        int threads = 0;
        int64_t steps = 0;
        TrainPrecision precision = TrainPrecision::Auto;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--data", a->data, "Tunes: .abc file or directory, IrishMAN .json, or .jsonl {\"text\"}")
        ->required();
    sub->add_option("--config", a->config,
                    "JSON settings (version, n_layer, n_embd, ctx_len, batch, steps, lr, … see docs/MUSIC.md); "
                    "assets/configs/music-*.json are the shipped recipes")
        ->required();
    sub->add_option("--out", a->out, "Run folder (config.json, checkpoints/, train_log.jsonl, model.safetensors)")
        ->required();
    sub->add_option("--validation", a->validation,
                    "Validation tunes in a separate corpus (same formats as --data) instead of a split of --data");
    sub->add_option("--steps", a->steps, "Override the config's steps")->check(CLI::PositiveNumber);
    sub->add_option("--threads", a->threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
    sub->add_option("--device", a->device, "cpu or cuda (a CUDA build of LibTorch)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    sub->add_flag("--resume", a->resume, "Continue from the newest checkpoint in --out");
    sub->add_flag("--quiet,-q", a->quiet, "No progress bar");
    add_precision_option(sub, a->precision);
    sub->callback([&run, a] {
        run = [a] {
            check_device(a->device);  // before anything is written
            music::MusicTrainConfig c = music::read_music_train_config(a->config);
            if (a->steps > 0) c.steps = a->steps;
            if (!latest_train_checkpoint(a->out).empty() && !a->resume)
                throw UsageError("'" + a->out +
                                 "' already holds checkpoints: add --resume to continue, or choose another --out");
            std::vector<music::Tune> all = music::read_music_corpus(a->data), kept;
            int64_t dropped = 0;
            for (auto& t : all) {
                if (int64_t(t.abc.size()) > c.max_tune_bytes) {
                    ++dropped;
                    continue;
                }
                kept.push_back(std::move(t));
            }
            AVIARY_CHECK(!kept.empty(), "'", a->data, "': every tune is longer than max_tune_bytes ", c.max_tune_bytes);
            std::vector<music::Tune> train, validation;
            if (!a->validation.empty()) {
                train = kept;
                validation = music::read_music_corpus(a->validation);
            } else if (c.validation_fraction > 0 && kept.size() > 1) {
                music::split_train_validation(kept, c.validation_fraction, c.split_seed, train, validation);
            } else {
                train = kept;
            }
            auto train_src = make_memory_source(music::frame_tunes_as_tokens(train), a->data + " (train)");
            AVIARY_CHECK(train_src->size() > c.ctx_len, "'", a->data, "': the training tunes hold ", train_src->size(),
                         " bytes, fewer than ctx_len + 1 = ", c.ctx_len + 1);
            fs::create_directories(a->out);
            write_file_atomic((fs::path(a->out) / "config.json").string(), music::music_train_config_json(c));
            std::fprintf(stderr,
                         "train music: %zu training tunes (%lld bytes), %zu validation, %lld dropped (> %lld bytes)\n",
                         train.size(), static_cast<long long>(train_src->size()), validation.size(),
                         static_cast<long long>(dropped), static_cast<long long>(c.max_tune_bytes));
            set_thread_count(a->threads);
            ModelOptions mo;
            mo.device = a->device;
            Model model = Model::from_tensors(
                init_weights(init_config(int(c.n_layer), int(c.n_embd), c.version, 256), c.seed), mo);
            LmTrainConfig cfg;
            cfg.train.ctx_len = c.ctx_len;
            cfg.train.batch = c.batch;
            cfg.train.grad_accum = c.grad_accum;
            cfg.train.steps = c.steps;
            cfg.train.lr = c.lr;
            cfg.train.lr_final = c.lr_final;
            cfg.train.warmup = c.warmup;
            cfg.train.weight_decay = c.weight_decay;
            cfg.train.grad_clip = c.grad_clip;
            cfg.train.seed = c.seed;
            cfg.train.precision = a->precision;
            cfg.out_dir = a->out;
            cfg.resume = a->resume;
            cfg.save_every = c.save_every;
            cfg.keep_last = c.keep_last;
            TrainSummary s = train_language_model_with_progress(model, *train_src, cfg, !a->quiet);
            nlohmann::json j;
            j["start_step"] = s.start_step;
            j["end_step"] = s.end_step;
            j["stopped"] = s.stopped;
            j["final_train_loss"] = s.losses.empty() ? 0.0 : s.losses.back();
            j["train_tunes"] = train.size();
            j["validation_tunes"] = validation.size();
            j["dropped_tunes"] = dropped;
            j["device"] = a->device;
            j["precision"] = train_precision_name(s.precision);
            if (!validation.empty()) {
                auto val_src = make_memory_source(music::frame_tunes_as_tokens(validation), a->data + " (validation)");
                if (val_src->size() > c.ctx_len) {
                    EvalResult e = evaluate_language_model(model, *val_src, c.ctx_len, c.eval_max_tokens);
                    j["validation_loss"] = e.loss;
                    j["validation_bits_per_byte"] = e.loss / std::log(2.0);
                    j["validation_tokens"] = e.tokens;
                }
            }
            j["model"] = s.final_model;
            j["log"] = (fs::path(a->out) / "train_log.jsonl").string();
            write_file_atomic((fs::path(a->out) / "summary.json").string(), j.dump(2) + "\n");
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

}  // namespace

void register_music(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("music", "Generate ABC tunes with a music model (abc2midi-checked)");
    struct Args {
        ModelArgs model;
        std::string out, meter, key, length, title, control_codes, bars, soundfont;
        int count = 1, max_bytes = 2048;
        uint64_t seed = 42;
        bool midi = false, wav = false, svg = false, quiet = false;
        music::TuneOptions tune;
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model, /*required=*/false);
    sub->add_option("--out,-o", a->out, "Output directory (tune_001.abc …, summary.json)")->required();
    sub->add_option("--count,-n", a->count, "Tunes to generate")->check(CLI::Range(1, 100000));
    sub->add_option("--seed", a->seed, "Seed of the first tune (tune i uses seed + i)");
    sub->add_option("--meter", a->meter, "M: header, e.g. 6/8");
    sub->add_option("--key", a->key, "K: header, e.g. D or Ador (needs --meter and --length)");
    sub->add_option("--length", a->length, "L: header, e.g. 1/8 (needs --meter)");
    sub->add_option("--title", a->title, "T: header");
    sub->add_option("--control-codes", a->control_codes, "IrishMAN control codes, e.g. 'S:2\\nB:8' (\\n separates)");
    sub->add_option("--bars", a->bars, "Opening bars after the header (needs --key)");
    sub->add_option("--max-bytes", a->tune.max_bytes, "Bytes to generate at most per tune")
        ->check(CLI::Range(1, 100000));
    sub->add_option("--temperature", a->tune.temperature, "Sampling temperature (official 1.0)")
        ->check(CLI::PositiveNumber);
    sub->add_option("--top-k", a->tune.top_k, "Top-k (official 8; 0: off)")->check(CLI::NonNegativeNumber);
    sub->add_option("--top-p", a->tune.top_p, "Top-p (official 0.8)")->check(CLI::Range(0.0, 1.0));
    sub->add_flag("--midi", a->midi, "Also write tune_NNN.mid (abc2midi, Debian abcmidi)");
    sub->add_flag("--wav", a->wav, "Also write tune_NNN.wav (fluidsynth + fluid-soundfont-gm; implies --midi)");
    sub->add_flag("--svg", a->svg, "Also write tune_NNN.svg (abcm2ps)");
    sub->add_option("--soundfont", a->soundfont, "SoundFont for --wav (default: fluid-soundfont-gm)");
    sub->add_flag("--quiet,-q", a->quiet, "Do not stream the tunes to stdout");
    sub->callback([&run, a] {
        run = [a] {
            std::string cc = a->control_codes;
            for (size_t p; (p = cc.find("\\n")) != std::string::npos;) cc.replace(p, 2, "\n");
            if (!a->key.empty() && (a->meter.empty() || a->length.empty()))
                throw UsageError("--key needs --meter and --length (ABC writes M: and L: before K:)");
            if (!a->length.empty() && a->meter.empty()) throw UsageError("--length needs --meter");
            if (!a->bars.empty() && a->key.empty()) throw UsageError("--bars needs --key");
            music::PromptOptions po;
            po.control_codes = cc;
            po.title = a->title;
            po.meter = a->meter;
            po.length = a->length;
            po.key = a->key;
            po.bars = a->bars;
            std::string prompt;
            try {
                prompt = music::build_prompt(po);
            } catch (const Error& e) {
                throw UsageError(e.what());
            }
            // Tools are checked before the model runs, so a missing one fails fast.
            const bool want_midi = a->midi || a->wav;
            if (want_midi && music::find_tool("abc2midi").empty())
                throw Error("--midi/--wav need abc2midi; install the Debian package 'abcmidi' (tools/install-deps.sh)");
            if (a->wav && music::find_tool("fluidsynth").empty())
                throw Error(
                    "--wav needs fluidsynth; install the Debian packages 'fluidsynth' and 'fluid-soundfont-gm'");
            if (a->svg && music::find_tool("abcm2ps").empty())
                throw Error("--svg needs abcm2ps; install the Debian package 'abcm2ps'");
            ModelArgs margs = a->model;
            if (margs.model.empty()) margs.model = music::default_model_path();
            AVIARY_CHECK(fs::exists(margs.model), "model '", margs.model, "' does not exist");
            Model model = load_model(margs);
            fs::create_directories(a->out);
            const bool have_abc2midi = !music::find_tool("abc2midi").empty();
            nlohmann::json summary, tunes = nlohmann::json::array();
            int n_valid = 0, n_checked = 0;
            for (int i = 0; i < a->count; ++i) {
                music::TuneOptions opt = a->tune;
                opt.seed = a->seed + uint64_t(i);
                char name[32];
                std::snprintf(name, sizeof name, "tune_%03d", i + 1);
                auto on_text = [a](const std::string& s) {
                    if (a->quiet) return;
                    std::fwrite(s.data(), 1, s.size(), stdout);
                    std::fflush(stdout);
                };
                if (!a->quiet) {
                    const std::string shown = ByteTokenizer().decode(music::encode_abc(prompt));
                    std::printf("%% %s\n%s", name, shown.c_str());
                }
                music::TuneResult r = music::generate_tune(model, prompt, opt, on_text);
                if (!a->quiet) std::printf("\n");
                const std::string abc = music::to_abc_file_text(r.text);
                const fs::path abc_path = fs::path(a->out) / (std::string(name) + ".abc");
                write_text(abc_path, abc);
                music::AbcCheck chk = music::check_abc(abc);
                nlohmann::json t;
                t["file"] = abc_path.filename().string();
                t["seed"] = opt.seed;
                t["bytes"] = r.generated.size();
                t["stop_reason"] = r.stop_reason;
                t["checker_ok"] = chk.ok;
                t["checker_errors"] = chk.errors;
                if (have_abc2midi) {
                    const fs::path mid = fs::path(a->out) / (std::string(name) + ".mid");
                    music::Abc2MidiResult v = music::abc2midi_check(abc_path.string(), want_midi ? mid.string() : "");
                    t["abc2midi_valid"] = v.valid;
                    t["abc2midi_errors"] = v.errors;
                    t["abc2midi_warnings"] = v.warnings.size();
                    ++n_checked;
                    n_valid += v.valid ? 1 : 0;
                    if (a->wav && fs::exists(mid))
                        music::export_wav(mid.string(), (fs::path(a->out) / (std::string(name) + ".wav")).string(),
                                          a->soundfont);
                }
                if (a->svg) {
                    try {
                        music::export_svg(abc_path.string(),
                                          (fs::path(a->out) / (std::string(name) + ".svg")).string());
                    } catch (const Error& e) {
                        t["svg_error"] = e.what();  // an unengravable tune is reported, not fatal
                    }
                }
                tunes.push_back(t);
            }
            summary["model"] = margs.model;
            summary["prompt"] = ByteTokenizer().decode(music::encode_abc(prompt));
            summary["count"] = a->count;
            summary["sampling"] = {
                {"temperature", a->tune.temperature}, {"top_k", a->tune.top_k}, {"top_p", a->tune.top_p}};
            if (have_abc2midi) {
                summary["abc2midi_valid"] = n_valid;
                summary["abc2midi_invalid"] = n_checked - n_valid;
                summary["abc2midi_valid_fraction"] = n_checked ? double(n_valid) / n_checked : 0.0;
            } else {
                summary["abc2midi"] = "not installed (Debian package abcmidi): validity not checked";
            }
            summary["tunes"] = tunes;
            write_file_atomic((fs::path(a->out) / "summary.json").string(), summary.dump(2) + "\n");
            if (have_abc2midi)
                std::fprintf(stderr, "music: %d/%d tunes pass abc2midi (%.0f%%); summary in %s/summary.json\n", n_valid,
                             n_checked, 100.0 * n_valid / std::max(1, n_checked), a->out.c_str());
            else
                std::fprintf(stderr, "music: abc2midi not installed (Debian package abcmidi): tunes not checked\n");
            return 0;
        };
    });

    // eval music-loss: registered on the existing `eval` command (cmd_eval.cpp registers it first).
    CLI::App* ev = app.get_subcommand("eval");
    auto* ml = ev->add_subcommand("music-loss", "Loss by byte position over ABC tunes (CSV + PNG), several models");
    struct LossArgs {
        std::vector<std::string> models;
        std::string data, out = "music_loss";
        int64_t max_len = 1024, max_tunes = 0;
        double sigma = 8;
        int threads = 0;
    };
    auto l = std::make_shared<LossArgs>();
    ml->add_option("--model,-m", l->models, "Model file (repeatable: curves are overlaid)")->required();
    ml->add_option("--data", l->data, "Tunes: .jsonl {\"text\"}, IrishMAN .json, .abc file or directory")->required();
    ml->add_option("--out,-o", l->out, "Output prefix: PREFIX.csv, PREFIX.png");
    ml->add_option("--max-len", l->max_len, "Bytes per tune at most (model context)")->check(CLI::Range(2, 1000000));
    ml->add_option("--max-tunes", l->max_tunes, "Evaluate at most N tunes (0: all)")->check(CLI::NonNegativeNumber);
    ml->add_option("--sigma", l->sigma, "Gaussian smoothing (positions; 0: off)")->check(CLI::NonNegativeNumber);
    ml->add_option("--threads", l->threads, "CPU threads")->check(CLI::NonNegativeNumber);
    ml->callback([&run, l] {
        run = [l] {
            std::vector<std::string> tunes;
            for (auto& t : music::read_music_corpus(l->data)) tunes.push_back(std::move(t.abc));
            if (l->max_tunes > 0 && int64_t(tunes.size()) > l->max_tunes) tunes.resize(size_t(l->max_tunes));
            std::vector<music::PositionLoss> raw;
            for (const auto& m : l->models) {
                AVIARY_CHECK(fs::exists(m), "model '", m, "' does not exist");
                ModelArgs ma;
                ma.model = m;
                ma.threads = l->threads;
                Model model = load_model(ma);
                raw.push_back(music::loss_by_position(model, tunes, l->max_len));
            }
            nlohmann::json j = write_position_loss_outputs(l->out, l->models, raw, l->sigma,
                                                           "ABC loss by byte position", "byte position");
            for (size_t k = 0; k < raw.size(); ++k) j["models"][k]["tunes"] = raw[k].tunes;
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
    register_train_music(app, run);
}

}  // namespace aviary::cli
