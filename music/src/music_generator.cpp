// Tune generation (ChatRWKV music/run.py): feed the prompt once in sequence mode, then one byte at a time in
// RNN mode, sample_logits(T=1.0, top_k=8, top_p=0.8) with no penalties, stop at EOS 3. The model runs in
// fp32 with no fp16 rescaling (RWKV_RESCALE_LAYER=999 in the reference).
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/sampler.h"
#include "aviary/music/abc.h"
#include "aviary/music/music.h"

namespace aviary::music {

const char* module_status() {
    return "music: ABC generation, readers, checker, abc2midi/fluidsynth/abcm2ps export";
}

std::string default_model_path() {
    static const char* kName = "music-eagle-L6-D256.safetensors";
    if (const char* env = std::getenv("AVIARY_MUSIC_MODEL"); env && *env) {
        AVIARY_CHECK(std::filesystem::exists(env), "AVIARY_MUSIC_MODEL names '", env, "', which does not exist");
        return env;
    }
    const std::string candidates[] = {std::string(AVIARY_INSTALL_DATADIR) + "/models/" + kName,
                                      std::string(AVIARY_SOURCE_DIR) + "/assets/models/" + kName};
    for (const auto& c : candidates)
        if (std::filesystem::exists(c)) return c;
    AVIARY_FAIL("cannot find the shipped music model ", kName, " (looked in $AVIARY_MUSIC_MODEL, ", candidates[0], ", ",
                candidates[1], "); pass --model");
}

TuneResult generate_tune(Model& model, const std::string& prompt, const TuneOptions& options,
                         const std::function<void(const std::string&)>& on_text,
                         const std::function<bool()>& should_stop) {
    AVIARY_CHECK(!prompt.empty(), "the music prompt is empty; it must start with chr(2) (build_prompt does)");
    std::vector<int32_t> ids = encode_abc(prompt);
    const int64_t vocab = model.config().vocab_size;
    AVIARY_CHECK(vocab > kEos, "model vocabulary of ", vocab, " is too small for ABC bytes");
    for (int32_t id : ids)
        AVIARY_CHECK(id < vocab, "prompt byte ", id, " is outside the model's vocabulary of ", vocab);
    torch::NoGradGuard no_grad;
    State state = model.new_state(1);
    auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
    at::Tensor logits = prefill(model, tokens, state).to(torch::kCPU, torch::kFloat32);  // CPU engine on the CPU
    // Byte by byte through the shared decoder: the CPU decode engine (or a CUDA graph on the GPU), Model::step
    // where neither applies (RWKV-4, LoRA).
    Decoder decoder(model, 1);
    decoder.load_state(state);
    std::mt19937_64 rng(options.seed);
    TuneResult r;
    r.stop_reason = "max_bytes";
    for (int i = 0; i < options.max_bytes; ++i) {
        if (should_stop && should_stop()) {
            r.stop_reason = "stopped";
            break;
        }
        logits = logits.contiguous();
        int32_t next = sample_logits(logits.data_ptr<float>(), logits.numel(), options.temperature, options.top_p,
                                     options.top_k, rng);
        if (next == kEos) {
            r.stop_reason = "end_of_tune";
            break;
        }
        if (next > kEos && next < 128) {
            const std::string piece(1, static_cast<char>(next));
            r.generated += piece;
            if (on_text) on_text(piece);
        }
        logits = decoder.step(torch::tensor({int64_t(next)}, torch::kInt64)).to(torch::kCPU, torch::kFloat32);
    }
    r.text = decode_abc(std::vector<int32_t>(ids.begin(), ids.end())) + r.generated;
    return r;
}

}  // namespace aviary::music
