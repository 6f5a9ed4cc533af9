// Streaming generation in the manner of ChatRWKV PIPELINE.generate (rwkv 0.8.32 utils.py; spec §6.1-6.4):
// the prompt is prefilled in chunks of 256 tokens (chunk_len), then sample -> step -> sample ...; penalties
// use the official weights (0 for whitespace/digit tokens); text is streamed only as complete UTF-8 and
// stop sequences are held back until they resolve, never emitted.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/generator.h"

namespace aviary {
namespace {

constexpr int64_t kPrefillChunk = 256;          // PIPELINE_ARGS.chunk_len
constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stop) {
    for (auto& s : stop) {
        if (!s.empty()) stop_.push_back(std::move(s));
    }
}

std::string StopMatcher::feed(std::string_view text) {
    if (stopped_) return {};
    held_.append(text.data(), text.size());
    // A complete stop sequence: emit what precedes the earliest one and stop.
    size_t first = std::string::npos;
    for (const auto& s : stop_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
        std::string out = held_.substr(0, first);
        held_.clear();
        stopped_ = true;
        return out;
    }
    // Hold back the longest suffix that is a proper prefix of some stop sequence; any match that is still
    // to complete must start inside it.
    size_t keep = 0;
    for (const auto& s : stop_) {
        const size_t max_len = std::min(held_.size(), s.size() - 1);
        for (size_t len = max_len; len > keep; --len) {
            if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
                keep = len;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string StopMatcher::flush() {
    std::string out;
    if (!stopped_) out.swap(held_);
    held_.clear();
    return out;
}

TextStream::TextStream(std::vector<std::string> stop) : matcher_(std::move(stop)) {}

std::string TextStream::push(std::string_view token_bytes) {
    pending_.append(token_bytes.data(), token_bytes.size());
    std::string ready;
    size_t pos = 0;
    while (pos < pending_.size()) {
        const std::string_view rest = std::string_view(pending_).substr(pos);
        const size_t valid = utf8_valid_prefix(rest);
        ready.append(rest.data(), valid);
        pos += valid;
        if (pos == pending_.size() || utf8_can_complete(std::string_view(pending_).substr(pos))) break;
        ready += kReplacement;  // a byte that no continuation can make valid
        ++pos;
    }
    pending_.erase(0, pos);
    return ready.empty() ? std::string() : matcher_.feed(ready);
}

std::string TextStream::finish() {
    std::string out;
    if (!pending_.empty()) {
        out = matcher_.feed(kReplacement);
        pending_.clear();
    }
    return out + matcher_.flush();
}

float official_penalty_weight(std::string_view token_bytes) {
    // Python: `if ttt in ' \t0123456789': www = 0` (substring test on the decoded token string).
    static constexpr std::string_view kZeroWeight = " \t0123456789";
    return kZeroWeight.find(token_bytes) != std::string_view::npos ? 0.0f : 1.0f;
}

GenerateResult generate(Model& model, const WorldTokenizer& tokenizer, State& state, const std::string& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks) {
    AVIARY_CHECK(!prompt.empty(), "generate: the prompt is empty (give at least one character)");
    const std::vector<int32_t> tokens_prompt = tokenizer.encode(prompt);
    const at::Device device(model.options().device);
    GenerateResult result;

    // Prefill in chunks of kPrefillChunk tokens: logits of the last position, (1, V).
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor logits;
    for (size_t start = 0; start < tokens_prompt.size(); start += kPrefillChunk) {
        const int64_t len = std::min<int64_t>(kPrefillChunk, static_cast<int64_t>(tokens_prompt.size() - start));
        at::Tensor chunk = at::empty({1, len}, at::kLong);  // (1, T)
        std::copy(tokens_prompt.begin() + start, tokens_prompt.begin() + start + len, chunk.data_ptr<int64_t>());
        logits = prefill(model, chunk.to(device), state);  // the CPU engine on the CPU
    }
    result.prefill_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    Sampler sampler(options.sampler);
    TextStream stream(options.stop);
    auto emit = [&](const std::string& piece) {
        if (piece.empty()) return;
        result.text += piece;
        if (callbacks.on_text) callbacks.on_text(piece);
    };
    result.stop_reason = "max_tokens";
    // The steps go through Decoder (CUDA: one CUDA-graph replay per token; CPU: the CPU decode engine); its state is
    // handed back below.
    std::optional<Decoder> decoder;
    if (!model.is_training()) {
        decoder.emplace(model, 1);
        decoder->load_state(state);
    }
    for (int i = 0; i < options.max_tokens; ++i) {
        if (callbacks.should_stop && callbacks.should_stop()) {
            result.stop_reason = "stopped";
            break;
        }
        const at::Tensor row = logits.reshape({-1}).to(at::kCPU, at::kFloat).contiguous();  // (V)
        const int32_t token = sampler.sample(row.data_ptr<float>(), row.numel());
        if (token == 0 && options.stop_at_end_of_text) {  // end of text: not emitted, not fed
            result.stop_reason = "end_of_text";
            break;
        }
        const std::string& bytes = tokenizer.token_bytes(token);
        result.tokens.push_back(token);
        sampler.accept(token, options.official_penalty_weights ? official_penalty_weight(bytes) : 1.0f);
        // Feed the token so that the state covers every generated token (chat continues from it).
        at::Tensor step_tokens = at::full({1}, static_cast<int64_t>(token), at::kLong);  // (B=1)
        logits = decoder ? decoder->step(step_tokens) : model.step(step_tokens.to(device), state);
        emit(stream.push(bytes));
        if (stream.stopped()) {
            result.stop_reason = "stop_sequence";
            break;
        }
    }
    if (decoder) state = decoder->state().clone();
    emit(stream.finish());
    result.decode_seconds = seconds_since(t0);
    return result;
}

}  // namespace aviary
