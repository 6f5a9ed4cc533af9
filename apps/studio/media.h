// Media the Image and Audio panels show: images decoded with OpenCV (DESIGN.md) into RGBA8, a CLIP-style preview of
// the model input (shorter side to 224, bicubic, centre crop 224×224) for builds without the vision module, a sound
// clip with the tagger's log-mel spectrogram colour-mapped for display, and synthetic demo media (a test pattern, a
// chirp with tones) so that both panels show something on first launch. Sound files are read by
// audio::read_sound_mono. Runs on the worker; no GL.
#pragma once
#include <memory>
#include <string>

#include "studio_events.h"

namespace aviary::studio {

// Throws aviary::Error naming the file when it is missing or not a decodable image.
ImageRGBA load_image_rgba(const std::string& path);
// Resize so the shorter side is `size` (bicubic), then centre crop size×size.
ImageRGBA clip_preview_crop(const ImageRGBA& image, int size = 224);
ImageRGBA demo_test_pattern(int width = 640, int height = 480);

// A 4 s demo: a 200 Hz → 4 kHz exponential chirp, then 440 Hz and 1320 Hz tones, at 16 kHz.
void demo_chirp(std::vector<float>& samples, int& sample_rate);
// The colour map spans this many dB below the loudest bin; wider sounds get columns of several frames.
constexpr double kSpectrogramRangeDb = 80;
constexpr int kMaxSpectrogramColumns = 8000;
// The clip with its spectrogram (model_spectrogram with `model`, null: the default front end) and its texture.
std::shared_ptr<AudioClip> make_audio_clip(std::vector<float> samples, int sample_rate,
                                           const audio::AudioRwkvConfig* model);

}  // namespace aviary::studio
