// Tune generation (ChatRWKV music/run.py): feed the prompt in sequence mode, then one byte at a time in RNN mode,
// sample_logits(T=1.0, top_k=8, top_p=0.8) with no penalties, stop at EOS 3 — through core generate() with the byte
// tokenizer. The model runs in fp32 with no fp16 rescaling (RWKV_RESCALE_LAYER=999 in the reference).
#include <c10/core/GradMode.h>

#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "aviary/core/model.h"
#include "aviary/core/shipped_model.h"
#include "aviary/music/abc.h"
#include "aviary/music/music.h"

namespace aviary::music {

const char* module_status() {
    return "music: ABC generation, readers, checker, abc2midi/fluidsynth/abcm2ps export";
}

std::string default_model_path() {
    return find_shipped_model("music-eagle-L6-D256.safetensors", "AVIARY_MUSIC_MODEL");
}

TuneResult generate_tune(Model& model, const std::string& prompt, const TuneOptions& options,
                         const std::function<void(const std::string&)>& on_text,
                         const std::function<bool()>& should_stop) {
    AVIARY_CHECK(!prompt.empty(), "the music prompt is empty; it must start with chr(2) (build_prompt does)");
    const std::vector<int32_t> ids = encode_abc(prompt);  // checks the ABC alphabet
    const int64_t vocab = model.config().vocab_size;
    AVIARY_CHECK(vocab > kEos, "model vocabulary of ", vocab, " is too small for ABC bytes");
    for (int32_t id : ids)
        AVIARY_CHECK(id < vocab, "prompt byte ", id, " is outside the model's vocabulary of ", vocab);
    c10::NoGradGuard no_grad;
    // The shared generation loop (core generate: prefill, then the decoder byte by byte) with the official sampling:
    // sample_logits(T, top-k, top-p) seeded with the tune's seed — a Sampler without penalties draws exactly that —
    // ending at EOS 3 only (pad 0 is fed like any byte, as in music/run.py).
    GenerateOptions g;
    g.max_tokens = options.max_bytes;
    g.sampler.temperature = options.temperature;
    g.sampler.top_p = options.top_p;
    g.sampler.top_k = options.top_k;
    g.sampler.presence_penalty = g.sampler.frequency_penalty = 0.0f;
    g.sampler.seed = options.seed;
    g.end_ids = {kEos};
    TuneResult r;
    GenerateCallbacks cb;
    cb.on_token = [&](int32_t id, const std::string&) {
        if (id <= kEos || id >= 128) return;  // only ABC's 7-bit bytes are kept (other ids are fed, not shown)
        const std::string piece(1, static_cast<char>(id));
        r.generated += piece;
        if (on_text) on_text(piece);
    };
    cb.should_stop = should_stop;
    const ByteTokenizer tokenizer;
    State state = model.new_state(1);
    const GenerateResult out = generate(model, tokenizer, state, ids, g, cb);
    r.stop_reason = out.stop_reason == "end_of_text"  ? "end_of_tune"
                    : out.stop_reason == "max_tokens" ? "max_bytes"
                                                      : out.stop_reason;
    r.text = tokenizer.decode(ids) + r.generated;
    return r;
}

}  // namespace aviary::music
