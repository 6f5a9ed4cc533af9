// The studio worker and chat session (apps/studio/studio_worker.cpp, chat_session.cpp) without GL: commands
// in, events out; a generation that streams and is stopped between tokens; every exception becomes an Error
// event; Regenerate restores the snapshot (equal to the state an independent sequence-mode forward gives) and
// repeats the answer; branches and session files keep their states; the World-tokenizer loop equals
// aviary::generate; music streams what music::generate_tune gives; the demo sound's spectrogram peaks at
// the tones' frequencies; images decode to the right pixels and the preview crop is the centre.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <thread>

#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/tokenizer.h"
#include "aviary/music/music.h"
#include "chat_session.h"
#include "common/cli_run.h"
#include "media.h"
#include "studio_worker.h"
#include "audio/wav_writer.h"
#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/sound_file.h"
#include "aviary/audio/tagger.h"
#ifdef AVIARY_HAVE_VISION
#include "aviary/vision/image.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/visual_rwkv.h"
#endif

using namespace aviary;
using namespace aviary::studio;
namespace fs = std::filesystem;

namespace {

std::string shipped_model() {
    return std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
}
std::string world_vocab() {
    return WorldTokenizer::default_vocab_path();
}
const char* kTunePrompt = "X:1\nT:Test\nM:6/8\nL:1/8\nK:D\n";

// Polls until the worker is idle (all its events drained), collecting events.
std::vector<Event> wait_idle(StudioWorker& w, double timeout_s = 120) {
    std::vector<Event> all;
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        const bool busy = w.busy();
        for (auto& e : w.poll()) all.push_back(std::move(e));
        if (!busy && w.events().size() == 0) break;
        if (std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(timeout_s)) {
            ADD_FAILURE() << "worker still busy after " << timeout_s << " s";
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return all;
}

std::vector<Event> of_kind(const std::vector<Event>& ev, EventKind k) {
    std::vector<Event> out;
    for (const auto& e : ev)
        if (e.kind == k) out.push_back(e);
    return out;
}

std::string text_of(const std::vector<Event>& ev, Channel c) {
    std::string s;
    for (const auto& e : ev)
        if (e.kind == EventKind::Text && e.channel == c) s += e.text;
    return s;
}

std::string errors_of(const std::vector<Event>& ev) {
    std::string s;
    for (const auto& e : of_kind(ev, EventKind::Error)) s += e.text + "\n";
    return s;
}

// Largest |a-b| / max|b| over all state tensors.
double state_rel_diff(const State& a, const State& b) {
    double worst = 0;
    for (int l = 0; l < b.n_layer(); ++l)
        for (auto [x, y] : {std::pair{a.att_shift[l], b.att_shift[l]}, std::pair{a.wkv[l], b.wkv[l]},
                            std::pair{a.ffn_shift[l], b.ffn_shift[l]}}) {
            const double d = (x - y).abs().max().item<double>(), m = y.abs().max().item<double>();
            worst = std::max(worst, d / std::max(m, 1e-12));
        }
    return worst;
}

GenerateOptions options(int max_tokens, uint64_t seed) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampler.seed = seed;
    return o;
}

// A small World-vocabulary model with the official init, saved once per test binary.
std::string world_model_path() {
    static const std::string path = [] {
        const fs::path dir = aviary::test::scratch_dir("studio_world_model");
        const std::string p = (dir / "world-L2-D64.safetensors").string();
        write_safetensors(p, init_weights(init_config(2, 64, 6, 65536), 3));
        return p;
    }();
    return path;
}

}  // namespace

TEST(StudioWorker, StreamsAndStopsBetweenTokens) {
    StudioWorker w(1);
    w.load_chat_model(shipped_model(), "byte");
    auto ev = wait_idle(w);
    ASSERT_EQ(errors_of(ev), "");
    ASSERT_EQ(of_kind(ev, EventKind::ModelLoaded).size(), 1u);
    EXPECT_GT(of_kind(ev, EventKind::ModelLoaded)[0].a, 0);  // state bytes

    ChatRequest r;
    r.user_text = kTunePrompt;
    r.options = options(3000, 1);
    w.chat_send(r);
    std::vector<Event> got;
    int texts = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (texts < 5 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
        for (auto& e : w.poll()) {
            texts += e.kind == EventKind::Text;
            got.push_back(std::move(e));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GE(texts, 5) << "no streamed text within 60 s";
    EXPECT_TRUE(w.busy());
    w.stop();
    for (auto& e : wait_idle(w)) got.push_back(std::move(e));
    ASSERT_EQ(errors_of(got), "");
    const auto done = of_kind(got, EventKind::Done);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].text, "stopped");
    EXPECT_LT(done[0].n, 3000);
    EXPECT_GE(done[0].n, 5);
    // Every streamed piece arrived before Done, and the pieces are the answer's bytes.
    EXPECT_LE(text_of(got, Channel::Chat).size(), size_t(done[0].n));
    EXPECT_EQ(got.front().kind, EventKind::JobStarted);
    EXPECT_EQ(got.back().kind, EventKind::JobFinished);
}

TEST(StudioWorker, ExceptionsBecomeErrorEvents) {
    StudioWorker w(1);
    w.chat_send({"hello", false, options(5, 1)});  // no model yet
    w.load_chat_model("/nonexistent/model.safetensors", "byte");
    w.post("throws int", Channel::App, [] { throw 42; });
    w.post("throws Error", Channel::Music, [] { AVIARY_FAIL("bad value 7"); });
    bool ran = false;
    w.post("still alive", Channel::App, [&] { ran = true; });
    const auto ev = wait_idle(w);
    const auto errors = of_kind(ev, EventKind::Error);
    ASSERT_EQ(errors.size(), 4u) << errors_of(ev);
    EXPECT_NE(errors[0].text.find("no chat model"), std::string::npos) << errors[0].text;
    EXPECT_NE(errors[1].text.find("/nonexistent/model.safetensors"), std::string::npos) << errors[1].text;
    EXPECT_EQ(errors[2].text, "throws int: unknown error");
    EXPECT_EQ(errors[3].text, "throws Error: bad value 7");
    EXPECT_EQ(errors[3].channel, Channel::Music);
    EXPECT_TRUE(ran);
}

TEST(StudioChat, RegenerateRestoresTheSnapshot) {
    ChatSession s;
    s.load(shipped_model(), "byte");
    const std::string first = kTunePrompt;
    const GenerateResult a = s.generate(first, options(40, 3), {}, {});
    ASSERT_FALSE(a.tokens.empty());
    s.take_snapshot();
    const State before = s.state().clone();

    // Independent reference for the snapshot: a fresh model in sequence mode over prompt + answer tokens.
    Model m = Model::load(shipped_model());
    State ref = m.new_state(1);
    std::vector<int64_t> ids;
    for (unsigned char c : first) ids.push_back(c);
    for (int32_t t : a.tokens) ids.push_back(t);
    m.forward(at::tensor(ids, at::kLong).reshape({1, -1}), ref, false);
    EXPECT_LT(state_rel_diff(s.snapshot(), ref), 1e-4) << "snapshot vs sequence-mode reference";

    const GenerateResult b1 = s.generate("|:", options(60, 11), {}, {});
    EXPECT_FALSE(states_equal(s.state(), before));
    s.restore_snapshot();
    EXPECT_TRUE(states_equal(s.state(), before));
    EXPECT_TRUE(states_equal(s.state(), s.snapshot()));
    const GenerateResult b2 = s.generate("|:", options(60, 11), {}, {});
    EXPECT_EQ(b1.tokens, b2.tokens);
    EXPECT_EQ(b1.text, b2.text);
}

TEST(StudioWorker, RegenerateRepeatsWithTheSameSeed) {
    StudioWorker w(1);
    w.chat_regenerate(options(5, 1));  // nothing to regenerate yet
    w.load_chat_model(shipped_model(), "byte");
    auto ev = wait_idle(w);
    ASSERT_EQ(of_kind(ev, EventKind::Error).size(), 1u);
    w.chat_send({kTunePrompt, false, options(50, 5)});
    ev = wait_idle(w);
    ASSERT_EQ(errors_of(ev), "");
    const std::string answer = text_of(ev, Channel::Chat);
    ASSERT_FALSE(answer.empty());
    w.chat_regenerate(options(50, 5));
    ev = wait_idle(w);
    ASSERT_EQ(errors_of(ev), "");
    ASSERT_EQ(of_kind(ev, EventKind::Regenerate).size(), 1u);
    EXPECT_EQ(text_of(ev, Channel::Chat), answer);
    w.chat_regenerate(options(50, 6));  // another seed: another answer from the same state
    ev = wait_idle(w);
    EXPECT_NE(text_of(ev, Channel::Chat), answer);
}

TEST(StudioChat, BranchesKeepTheirStates) {
    ChatSession s;
    s.load(shipped_model(), "byte");
    s.generate(kTunePrompt, options(20, 1), {}, {});
    const State at_branch = s.state().clone();
    EXPECT_EQ(s.branch(), 1);
    s.generate("|:A", options(20, 2), {}, {});
    const State branch1 = s.state().clone();
    EXPECT_FALSE(states_equal(branch1, at_branch));
    s.switch_branch(0);
    EXPECT_TRUE(states_equal(s.state(), at_branch));
    s.switch_branch(1);
    EXPECT_TRUE(states_equal(s.state(), branch1));
    EXPECT_EQ(s.branch_count(), 2);
    EXPECT_THROW(s.switch_branch(5), aviary::Error);
}

TEST(StudioChat, SessionFilesRoundTrip) {
    const fs::path dir = aviary::test::scratch_dir("studio_session");
    const std::string path = (dir / "session.safetensors").string();
    ChatSession s;
    s.load(shipped_model(), "byte");
    s.generate(kTunePrompt, options(20, 1), {}, {});
    const State saved = s.state().clone();
    const std::string history = R"([{"role":"user","text":"X:1"},{"role":"model","text":"abc"}])";
    s.save_session(path, history);
    s.reset();
    EXPECT_FALSE(states_equal(s.state(), saved));
    EXPECT_EQ(s.load_session(path), history);
    EXPECT_TRUE(states_equal(s.state(), saved));
    // Another model's state does not fit.
    ChatSession other;
    other.load(world_model_path(), "world", world_vocab());
    try {
        other.load_session(path);
        FAIL() << "no error";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(StudioChat, WorldLoopEqualsCoreGenerate) {
    ChatSession s;
    s.load(world_model_path(), "world", world_vocab());
    GenerateOptions o = options(24, 9);
    o.sampler.top_p = 0.95f;
    o.stop = {"\n\n"};
    std::string streamed;
    const GenerateResult ours = s.generate("User: hello there\n\nAssistant:", o,
                                           [&](const std::string& p, const ChatStreamStats&) { streamed += p; }, {});
    Model m = Model::load(world_model_path());
    const WorldTokenizer tok = WorldTokenizer::load(world_vocab());
    State st = m.new_state(1);
    const GenerateResult ref = aviary::generate(m, tok, st, "User: hello there\n\nAssistant:", o);
    EXPECT_EQ(ours.tokens, ref.tokens);
    EXPECT_EQ(ours.text, ref.text);
    EXPECT_EQ(ours.stop_reason, ref.stop_reason);
    EXPECT_EQ(streamed, ref.text);
    EXPECT_LT(state_rel_diff(s.state(), st), 1e-6);
}

TEST(StudioWorker, MusicStreamsWhatGenerateTuneGives) {
    StudioWorker w(1);
    MusicRequest r;
    r.model_path = shipped_model();
    r.prompt.meter = "6/8", r.prompt.key = "D", r.prompt.length = "1/8";
    r.tune.max_bytes = 80;
    r.tune.seed = 4;
    w.music_generate(r);
    const auto ev = wait_idle(w);
    ASSERT_EQ(errors_of(ev), "");
    const std::string text = text_of(ev, Channel::Music);
    const std::string prompt = music::build_prompt(r.prompt);
    Model m = Model::load(shipped_model());
    const music::TuneResult ref = music::generate_tune(m, prompt, r.tune);
    EXPECT_EQ(text, prompt.substr(1) + ref.generated);
    const auto done = of_kind(ev, EventKind::Done);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].text, ref.stop_reason);
}

TEST(StudioWorker, DemoSoundSpectrogramPeaksAtItsTones) {
    StudioWorker w(1);
    w.demo_audio();
    const auto ev = wait_idle(w);
    const auto ready = of_kind(ev, EventKind::AudioReady);
    ASSERT_EQ(ready.size(), 1u) << errors_of(ev);
    const AudioClip& c = *ready[0].audio;
    const Spectrogram& s = c.spectrogram;
    ASSERT_EQ(c.sample_rate, 16000);
    // No model loaded: the default AudioRWKV front end (32 kHz, hop 320 = 10 ms, centred frames) and no clip.
    EXPECT_EQ(s.n_frames, int(audio::resample(c.samples, 16000, 32000).size()) / 320 + 1);
    EXPECT_DOUBLE_EQ(s.hop_seconds, 0.01);
    EXPECT_EQ(s.clip_frames, 0);
    EXPECT_EQ(c.spectrogram_rgba.width, s.n_frames);
    EXPECT_EQ(c.spectrogram_rgba.height, s.n_mels);
    auto peak_hz = [&](double t) {
        const int f = int(std::lround(t / s.hop_seconds));
        int best = 0;
        for (int m = 1; m < s.n_mels; ++m)
            if (s.at(f, m) > s.at(f, best)) best = m;
        return s.band_hz[size_t(best)];
    };
    // Chirp f(t) = 200·20^(t/2.5) Hz: 663 Hz at 1.0 s, 2.0 kHz at 1.9 s; then the 440 Hz tone dominates.
    // Slaney mel bands are ~54 Hz apart below 1 kHz and ~6 % above: the peak band's centre is within 12 %.
    for (auto [t, hz] :
         {std::pair{1.0, 200 * std::pow(20.0, 0.4)}, std::pair{1.9, 200 * std::pow(20.0, 0.76)}, std::pair{3.2, 440.0}})
        EXPECT_NEAR(peak_hz(t), hz, hz * 0.12) << "at " << t << " s";
}

TEST(StudioWorker, ImagesDecodeAndCropTheCentre) {
    const fs::path dir = aviary::test::scratch_dir("studio_image");
    cv::Mat bgr(224, 448, CV_8UC3);
    cv::randu(bgr, 0, 256);
    const std::string png = (dir / "random.png").string();
    ASSERT_TRUE(cv::imwrite(png, bgr));
    std::ofstream((dir / "not_an_image.png").string()) << "hello";
    StudioWorker w(1);
    w.open_image(png);
    w.open_image((dir / "not_an_image.png").string());
    w.ask_image("what is this?", 8);
    const auto ev = wait_idle(w);
    const auto ready = of_kind(ev, EventKind::ImageReady);
    ASSERT_EQ(ready.size(), 1u);
    const ImageRGBA& img = *ready[0].image;
    ASSERT_EQ(img.width, 448);
    ASSERT_EQ(img.height, 224);
    int mismatches = 0;
    for (int y = 0; y < 224; ++y)
        for (int x = 0; x < 448; ++x) {
            const cv::Vec3b p = bgr.at<cv::Vec3b>(y, x);
            const uint8_t* q = &img.rgba[(size_t(y) * 448 + x) * 4];
            mismatches += q[0] != p[2] || q[1] != p[1] || q[2] != p[0] || q[3] != 255;
        }
    EXPECT_EQ(mismatches, 0);
    // Shorter side already 224: no resampling, the crop is columns [112, 336).
    const ImageRGBA& crop = *ready[0].image2;
    ASSERT_EQ(crop.width, 224);
    ASSERT_EQ(crop.height, 224);
    mismatches = 0;
    for (int y = 0; y < 224; ++y)
        for (int x = 0; x < 224; ++x)
            for (int ch = 0; ch < 4; ++ch)
                mismatches +=
                    crop.rgba[(size_t(y) * 224 + x) * 4 + ch] != img.rgba[(size_t(y) * 448 + x + 112) * 4 + ch];
    EXPECT_EQ(mismatches, 0);
    const auto errors = of_kind(ev, EventKind::Error);
    ASSERT_EQ(errors.size(), 2u) << errors_of(ev);
    EXPECT_NE(errors[0].text.find("not_an_image.png"), std::string::npos) << errors[0].text;
#ifdef AVIARY_HAVE_VISION
    EXPECT_NE(errors[1].text.find("no VQA model loaded"), std::string::npos) << errors[1].text;
#else
    EXPECT_NE(errors[1].text.find("not available in this build"), std::string::npos) << errors[1].text;
#endif
}

#ifdef AVIARY_HAVE_VISION
// With the vision module: a small random VisualRWKV (RWKV-6 L2 D64 byte vocabulary, CLIP ViT of 32 px images in
// 8 px patches) answers through the worker exactly as vision::answer_question does when called directly, and the
// preview is the model's 32 px input.
TEST(StudioWorker, VqaAnswersThroughTheVisionModule) {
    const fs::path dir = aviary::test::scratch_dir("studio_vqa");
    auto w8 = init_weights(init_config(2, 64, 6, 256), 5);
    at::manual_seed(5);
    for (auto& t : w8)  // the official init zeroes several matrices; make every weight matter
        if (t.tensor.is_floating_point()) t.tensor = t.tensor + 0.05 * at::randn_like(t.tensor);
    vision::ClipVisionConfig vc;
    vc.hidden = 32, vc.heads = 2, vc.intermediate = 64, vc.layers = 2, vc.patch = 8, vc.image_size = 32;
    const std::string model_path = (dir / "tiny-vqa.safetensors").string();
    vision::VisualRwkv::from_parts(Model::from_tensors(w8), vision::ClipVision::create(vc, 6),
                                   at::randn({64, 32}) * 0.2)
        .save(model_path, {{"tokenizer", "byte"}});
    cv::Mat bgr(48, 64, CV_8UC3);
    cv::randu(bgr, 0, 256);
    const std::string png = (dir / "img.png").string();
    ASSERT_TRUE(cv::imwrite(png, bgr));

    StudioWorker w(1);
    w.load_vision_model(model_path);
    w.open_image(png);
    w.ask_image("what is it?", 16);
    const auto ev = wait_idle(w);
    ASSERT_EQ(errors_of(ev), "");
    ASSERT_EQ(of_kind(ev, EventKind::ModelLoaded).size(), 1u);
    EXPECT_TRUE(w.vision_status().find("VisualRWKV") != std::string::npos) << w.vision_status();
    const auto ready = of_kind(ev, EventKind::ImageReady);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].image2->width, 32);
    EXPECT_EQ(ready[0].image2->height, 32);

    vision::VisualRwkv ref_model = vision::VisualRwkv::load(model_path);
    const ByteTokenizer codec;  // the demo model has 256 ids
    vision::ClipPreprocess o;
    o.size = 32;
    const at::Tensor px = vision::clip_preprocess(vision::load_image(png), o);
    vision::AnswerOptions ao;
    ao.max_tokens = 16;
    const vision::AnswerResult ref = vision::answer_question(ref_model, codec, px, "what is it?", ao);
    EXPECT_EQ(text_of(ev, Channel::Image), ref.text);
    EXPECT_GT(ref.tokens, 0);
    // the answer's timings reach the panel as one line (the numbers of `aviary vqa --stats`)
    std::vector<Event> stats;
    for (const auto& e : of_kind(ev, EventKind::Stats))
        if (e.channel == Channel::Image) stats.push_back(e);
    ASSERT_EQ(stats.size(), 1u);
    EXPECT_EQ(stats[0].n, ref.tokens);
    EXPECT_GT(stats[0].b, 0.0);  // peak memory, MiB
    EXPECT_NE(stats[0].text.find("first token"), std::string::npos) << stats[0].text;
    // The preview is the model input: the normalised pixels mapped back to 8-bit codes.
    const at::Tensor codes =
        ((px.to(at::kDouble) * at::tensor({o.std[0], o.std[1], o.std[2]}, at::kDouble).view({3, 1, 1}) +
          at::tensor({o.mean[0], o.mean[1], o.mean[2]}, at::kDouble).view({3, 1, 1})) *
         255)
            .round()
            .clamp(0, 255)
            .to(at::kByte)
            .permute({1, 2, 0})
            .contiguous();
    int mismatches = 0;
    for (int i = 0; i < 32 * 32; ++i)
        for (int c = 0; c < 3; ++c)
            mismatches += ready[0].image2->rgba[size_t(i) * 4 + c] != codes.data_ptr<uint8_t>()[i * 3 + c];
    EXPECT_EQ(mismatches, 0);
}
#endif

// A small random AudioRWKV tags an opened sound through the worker with the scores of audio::tag_file called
// directly on the file, sorted highest first; the demo sound (no file: tagged from the samples in memory) has the same
// samples and gets the same tags; loading the model redraws the sound shown with the model's front end and clip.
TEST(StudioWorker, TagsThroughTheAudioModule) {
    const fs::path dir = aviary::test::scratch_dir("studio_tags");
    audio::AudioRwkvConfig c = audio::AudioRwkvConfig::tiny(1.0);
    c.n_embd = 64, c.n_layer = 2, c.n_head = 1, c.n_classes = 5, c.lora_mix = 8, c.lora_decay = 8;
    c.hop = 640;  // a front end other than the default one
    std::vector<audio::ClassLabel> labels;
    for (int i = 0; i < 5; ++i) labels.push_back({"/m/" + std::to_string(i), "class " + std::to_string(i)});
    const std::string model_path = (dir / "tiny-tagger.safetensors").string();
    audio::AudioRwkv(c, labels, 3).save(model_path);
    // A sound file: the demo chirp written as a 16 kHz float WAV (float samples survive exactly).
    std::vector<float> samples;
    int sr = 0;
    demo_chirp(samples, sr);
    const std::string wav = (dir / "chirp.wav").string();
    aviary::test::write_wav(wav, samples, 1, sr, /*float_format=*/true);
    StudioWorker w(1);
    w.tag_audio();  // no sound yet
    w.open_audio(wav);
    w.load_audio_model(model_path);
    w.tag_audio();
    w.demo_audio();
    w.tag_audio();
    const auto ev = wait_idle(w);
    const auto errors = of_kind(ev, EventKind::Error);
    ASSERT_EQ(errors.size(), 1u) << errors_of(ev);
    EXPECT_NE(errors[0].text.find("open a sound first"), std::string::npos);
    const auto ready = of_kind(ev, EventKind::AudioReady);
    ASSERT_EQ(ready.size(), 3u);  // the file, the file again with the model's front end, the demo sound
    EXPECT_EQ(ready[0].audio->spectrogram.clip_frames, 0);
    EXPECT_DOUBLE_EQ(ready[0].audio->spectrogram.hop_seconds, 0.01);
    for (int i : {1, 2}) {
        EXPECT_EQ(ready[size_t(i)].audio->spectrogram.clip_frames, c.frames()) << i;
        EXPECT_DOUBLE_EQ(ready[size_t(i)].audio->spectrogram.hop_seconds, 0.02) << i;
    }
    EXPECT_EQ(ready[1].text, ready[0].text);
    EXPECT_NE(ready[0].text.find("chirp.wav (4.00 s, 16000 Hz, 1 channel)"), std::string::npos) << ready[0].text;
    const auto tags = of_kind(ev, EventKind::Tags);
    ASSERT_EQ(tags.size(), 2u);
    audio::AudioRwkv ref_model = audio::AudioRwkv::load(model_path);
    const auto ref = audio::tag_file(ref_model, wav, 0);
    for (const auto& t : tags) {
        ASSERT_EQ(t.tags.size(), ref.size());
        for (size_t i = 0; i < ref.size(); ++i) {
            EXPECT_EQ(t.tags[i].first, ref[i].name) << "rank " << i;
            EXPECT_EQ(t.tags[i].second, float(ref[i].score)) << "rank " << i;
        }
    }
}
