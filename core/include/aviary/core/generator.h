// Streaming text generation: prefill a prompt, then sample token by token in RNN mode, emitting text as
// soon as it is valid UTF-8, stopping at stop sequences, end of text, max tokens or should_stop().
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "aviary/core/model.h"
#include "aviary/core/sampler.h"
#include "aviary/core/tokenizer.h"

namespace aviary {

struct GenerateOptions {
    int max_tokens = 200;
    SamplerOptions sampler;
    std::vector<std::string> stop;  // stop sequences (not emitted)
    bool stop_at_end_of_text = true;  // token 0
    bool official_penalty_weights = true;  // weight 0 for tokens inside " \t0123456789" (spec §6.3)
};

struct GenerateCallbacks {
    std::function<void(const std::string&)> on_text;  // streamed pieces
    std::function<bool()> should_stop;                 // polled every token
};

struct GenerateResult {
    std::string text;
    std::vector<int32_t> tokens;
    std::string stop_reason;  // "max_tokens", "stop_sequence", "end_of_text", "stopped"
    double prefill_seconds = 0, decode_seconds = 0;
};

// The state is advanced over the prompt and the generated tokens (kept, so chat can continue).
// An empty prompt is an error (aviary::Error).
GenerateResult generate(Model& model, const WorldTokenizer& tokenizer, State& state, const std::string& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks = {});

}  // namespace aviary
