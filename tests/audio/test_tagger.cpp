// Tagging (audio/src/tagger.cpp) from the three sources — a file, the file's bytes in memory, mono samples — on the
// shipped demo model: the same tags and scores bit for bit, since one path follows the decoding; model_log_mel is the
// front end the tagger feeds the model (the forward of its features gives the tagger's scores); bad samples and bad
// bytes give one clear error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "aviary/audio/sound_file.h"
#include "aviary/audio/tagger.h"
#include "common/error_of.h"

namespace aviary::audio {
namespace {

std::string sample_path(const std::string& name) {
    return std::string(AVIARY_SOURCE_DIR) + "/assets/samples/" + name;
}

std::string bytes_of(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void expect_same_tags(const std::vector<Tag>& a, const std::vector<Tag>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].index, b[i].index) << what << " rank " << i;
        EXPECT_EQ(a[i].name, b[i].name) << what << " rank " << i;
        EXPECT_EQ(a[i].score, b[i].score) << what << " rank " << i;  // bit for bit: one path after decoding
    }
}

TEST(Tagger, FileBytesAndSamplesGiveTheSameTags) {
    AudioRwkv model = AudioRwkv::load(default_model_path());
    for (const std::string name : {"sine.wav", "white_noise.wav"}) {
        const std::string path = sample_path(name);
        TagTimings tf, tb, ts;
        const std::vector<Tag> from_file = tag_file(model, path, 0, &tf);
        ASSERT_EQ(int64_t(from_file.size()), model.config().n_classes);
        EXPECT_GE(from_file.front().score, from_file.back().score);
        const std::string bytes = bytes_of(path);
        expect_same_tags(tag_sound_bytes(model, bytes.data(), bytes.size(), name, 0, &tb), from_file, name + " bytes");
        SoundInfo info;
        const std::vector<float> mono = read_sound_mono(path, &info);
        expect_same_tags(tag_samples(model, mono, info.sample_rate, 0, &ts), from_file, name + " samples");
        for (const TagTimings* t : {&tf, &tb, &ts}) {
            EXPECT_EQ(t->files, 1);
            EXPECT_EQ(t->input_tokens, model.config().grid_t() * model.config().grid_f());
        }
        // top_k cuts the same ranking.
        expect_same_tags(tag_sound_bytes(model, bytes.data(), bytes.size(), name, 3),
                         std::vector<Tag>(from_file.begin(), from_file.begin() + 3), name + " top 3");
    }
}

TEST(Tagger, ModelLogMelIsWhatTheModelReads) {
    AudioRwkv model = AudioRwkv::load(default_model_path());
    const AudioRwkvConfig& c = model.config();
    SoundInfo info;
    const std::vector<float> mono = read_sound_mono(sample_path("sine.wav"), &info);
    const Features f = model_log_mel(c, mono, info.sample_rate, c.clip_samples());
    ASSERT_EQ(f.frames, c.frames());
    ASSERT_EQ(f.bins, c.n_mels);
    // The whole sound (no clip fitting) agrees with the clip's frames wherever both see only the sound.
    const Features whole = model_log_mel(c, mono, info.sample_rate, 0);
    const int64_t resampled = int64_t(resample(mono, info.sample_rate, c.sample_rate).size());
    const int64_t inside = (std::min(resampled, c.clip_samples()) - log_mel_options(c).n_fft / 2) / c.hop;
    ASSERT_GT(inside, 10);
    for (int64_t t = 0; t < inside; ++t)
        for (int64_t b = 0; b < f.bins; ++b) ASSERT_EQ(whole.at(t, b), f.at(t, b)) << "frame " << t << " bin " << b;
    torch::NoGradGuard no_grad;
    model.set_training(false);
    std::vector<float> data = f.data;
    const at::Tensor p = torch::sigmoid(model.forward(torch::from_blob(data.data(), {1, f.frames, f.bins})))[0];
    const std::vector<Tag> tags = tag_samples(model, mono, info.sample_rate, 1);
    ASSERT_EQ(tags.size(), 1u);
    EXPECT_EQ(tags[0].index, p.argmax().item<int64_t>());
    EXPECT_EQ(tags[0].score, p.to(torch::kDouble).max().item<double>());
}

TEST(Tagger, BadSamplesAndBytesGiveOneClearError) {
    AudioRwkv model = AudioRwkv::load(default_model_path());
    using test::error_of;
    EXPECT_NE(error_of([&] { tag_samples(model, {}, 16000, 5); }).find("no samples"), std::string::npos);
    const std::string rate = error_of([&] { tag_samples(model, std::vector<float>(100, 0.f), 0, 5); });
    EXPECT_NE(rate.find("sample rate of 0 Hz"), std::string::npos) << rate;
    const std::string nan = error_of([&] { tag_samples(model, {0.f, std::nanf(""), 0.f}, 16000, 5); });
    EXPECT_NE(nan.find("non-finite sample (NaN or Inf) at frame 1"), std::string::npos) << nan;
    const std::string junk = "RIFF not really a wave file";
    const std::string bad = error_of([&] { tag_sound_bytes(model, junk.data(), junk.size(), "upload.wav", 5); });
    EXPECT_NE(bad.find("'upload.wav' is not a sound file"), std::string::npos) << bad;
    const std::string empty = error_of([&] { tag_sound_bytes(model, "", 0, "upload.wav", 5); });
    EXPECT_NE(empty.find("'upload.wav' is empty"), std::string::npos) << empty;
}

}  // namespace
}  // namespace aviary::audio
