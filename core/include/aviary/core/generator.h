// Streaming text generation: prefill a prompt, then sample token by token in RNN mode, emitting text as
// soon as it is valid UTF-8, stopping at stop sequences, end of text, max tokens or should_stop().
#pragma once
#include <ATen/core/Tensor.h>

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
    std::vector<std::string> stop;    // stop sequences (not emitted)
    bool stop_at_end_of_text = true;  // the tokenizer's end ids (Tokenizer::is_end): not emitted, not fed
    // When not empty, the ids that end the text instead of the tokenizer's (e.g. ABC tunes end at EOS 3 only, as
    // ChatRWKV music/run.py stops: its pad 0 is fed like any byte).
    std::vector<int32_t> end_ids;
    bool official_penalty_weights = true;  // weight 0 for tokens inside " \t0123456789" (spec §6.3)
};

struct GenerateStats {
    int64_t prompt_tokens = 0;  // prefilled by this call
    int64_t tokens = 0;         // generated so far
    double prefill_seconds = 0, decode_seconds = 0;
    double tokens_per_s = 0;  // generated tokens / decode seconds so far
};

struct GenerateCallbacks {
    std::function<void(const std::string&)> on_text;  // streamed text pieces (complete UTF-8, stop sequences held)
    // Every generated token (fed to the model), with the text it released ("" while held back).
    std::function<void(int32_t token, const std::string& text)> on_token;
    std::function<void(const GenerateStats&)> on_stats;  // after the prefill and after each token
    std::function<bool()> should_stop;                   // polled before the prefill chunks and every token
};

struct GenerateResult {
    std::string text;
    std::vector<int32_t> tokens;
    std::string stop_reason;  // "max_tokens", "stop_sequence", "end_of_text", "stopped"
    double prefill_seconds = 0, decode_seconds = 0;
    int64_t prompt_tokens = 0;
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

// One sequence's generation, independent of how its logits are computed (one sequence through generate() below,
// or many decoded together, as a server batches them): sampling with penalties (Sampler), end ids, max_tokens,
// streaming text (TextStream) and stop sequences. Use: while (!finished()) { t = next(logits); if (t < 0) break;
// logits = <feed t>; } then finish(). A token next() returns is always fed, also the last one, so the state covers
// every generated token (a chat continues from it); an end id is neither returned nor fed.
class SequenceGenerator {
public:
    SequenceGenerator(const Tokenizer& tokenizer, const GenerateOptions& options, GenerateCallbacks callbacks = {});
    // Samples the next token from logits[0..n) (the logits of the position after the last fed token): the token to
    // feed, or -1 when the sequence ends here (end of text; max_tokens <= 0). After it, finished() says whether more
    // tokens are wanted (max_tokens reached, a stop sequence completed).
    int32_t next(const float* logits, int64_t n);
    bool finished() const { return !result_.stop_reason.empty(); }
    void stop(const std::string& reason = "stopped");  // ends the sequence (no effect when it has already ended)
    // Flushes the held text (emitted through on_text) and returns the result; call once, at the end.
    GenerateResult finish();
    const GenerateResult& result() const { return result_; }  // so far
    const GenerateCallbacks& callbacks() const { return callbacks_; }

private:
    void emit(const std::string& piece);
    const Tokenizer& tokenizer_;
    GenerateOptions options_;
    GenerateCallbacks callbacks_;
    Sampler sampler_;
    TextStream stream_;
    GenerateResult result_;
};

// The generation loop, single sequence: prefills `prompt` (chunks of 256 tokens; the CPU engine on the CPU), then
// samples and decodes through Decoder (CPU engine, CUDA graph; Model::step where neither applies) until the
// SequenceGenerator ends. The state is advanced over the prompt and the generated tokens (kept, so chat can
// continue). An empty prompt, or one with ids outside the model's vocabulary, is an error (aviary::Error).
GenerateResult generate(Model& model, const Tokenizer& tokenizer, State& state, const std::string& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks = {});
GenerateResult generate(Model& model, const Tokenizer& tokenizer, State& state, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks = {});
// Starts from a state that already covers the prompt and the logits of its last position ((V) or (1, V), any
// device): what a prefill of image rows (VisualRWKV) or a cached state hands over.
GenerateResult generate_from_logits(Model& model, const Tokenizer& tokenizer, State& state, const at::Tensor& logits,
                                    const GenerateOptions& options, const GenerateCallbacks& callbacks = {});

}  // namespace aviary
