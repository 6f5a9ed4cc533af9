// Media the Image and Audio panels show without a model: images decoded with OpenCV (DESIGN.md) into RGBA8,
// a CLIP-style preview of the model input (shorter side to 224, bicubic, centre crop 224×224), sound files
// read with libsndfile and mixed to mono, and synthetic demo media (a test pattern, a chirp with tones) so
// that both panels show something on first launch. Runs on the worker; no GL.
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

// Mono samples of a sound file (channels averaged); throws naming the file.
void load_sound_mono(const std::string& path, std::vector<float>& samples, int& sample_rate);
// A 4 s demo: a 200 Hz → 4 kHz exponential chirp, then 440 Hz and 1320 Hz tones, at 16 kHz.
void demo_chirp(std::vector<float>& samples, int& sample_rate);
// Spectrogram (spectrogram.h defaults, hop = 10 ms) and its colour-mapped texture.
std::shared_ptr<AudioClip> make_audio_clip(std::vector<float> samples, int sample_rate);

}  // namespace aviary::studio
