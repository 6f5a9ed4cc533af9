// Streaming text generation: prefill a prompt, then sample token by token in RNN mode, emitting text as
// soon as it is valid UTF-8, stopping at stop sequences, end of text, max tokens or should_stop().
#pragma once
#include <functional>
#include <string>
#include <string_view>
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

// Matches stop sequences on streamed text. feed() returns the text that is safe to emit now: everything
// that cannot be the start of a stop sequence; a possible partial match is held back until it resolves.
// Once a stop sequence is complete, stopped() is true, the text before it has been returned, and the stop
// sequence and anything after it are never returned. Empty stop strings are ignored.
class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stop = {});
    std::string feed(std::string_view text);
    std::string flush();  // at the end of generation: the held-back text (no stop sequence completed)
    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stop_;
    std::string held_;
    bool stopped_ = false;
};

// Turns generated token bytes into text pieces: bytes wait until they form complete UTF-8 characters
// (utf8_valid_prefix; bytes that can never become valid are replaced by U+FFFD), then pass the StopMatcher.
class TextStream {
public:
    explicit TextStream(std::vector<std::string> stop = {});
    std::string push(std::string_view token_bytes);  // text to emit now ("" when nothing is ready)
    std::string finish();  // flushes held text; an incomplete trailing character becomes U+FFFD
    bool stopped() const { return matcher_.stopped(); }

private:
    StopMatcher matcher_;
    std::string pending_;  // bytes of an incomplete UTF-8 character
};

// Official penalty weight of a generated token (spec §6.3): 0 when its text is a substring of
// " \t0123456789" (Python `in`: space, tab, a run of consecutive digits, the empty string), else 1.
float official_penalty_weight(std::string_view token_bytes);

// The state is advanced over the prompt and the generated tokens (kept, so chat can continue).
// An empty prompt is an error (aviary::Error).
GenerateResult generate(Model& model, const WorldTokenizer& tokenizer, State& state, const std::string& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks = {});

}  // namespace aviary
