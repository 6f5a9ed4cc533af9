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

constexpr int64_t kPrefillChunk = 256;                // PIPELINE_ARGS.chunk_len
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

SequenceGenerator::SequenceGenerator(const Tokenizer& tokenizer, const GenerateOptions& options,
                                     GenerateCallbacks callbacks)
    : tokenizer_(tokenizer),
      options_(options),
      callbacks_(std::move(callbacks)),
      sampler_(options.sampler),
      stream_(options.stop) {
    if (options_.max_tokens <= 0) result_.stop_reason = "max_tokens";
}

void SequenceGenerator::emit(const std::string& piece) {
    if (piece.empty()) return;
    result_.text += piece;
    if (callbacks_.on_text) callbacks_.on_text(piece);
}

int32_t SequenceGenerator::next(const float* logits, int64_t n) {
    if (finished()) return -1;
    // Only ids the tokenizer can spell are drawn: a byte tokenizer on a larger model, or the World vocabulary's 65530
    // ids on a model padded to 65536, never produce an id without text.
    const int32_t token = sampler_.sample(logits, std::min<int64_t>(n, tokenizer_.vocab_size()));
    const bool end = options_.end_ids.empty()
                         ? tokenizer_.is_end(token)
                         : std::find(options_.end_ids.begin(), options_.end_ids.end(), token) != options_.end_ids.end();
    if (options_.stop_at_end_of_text && end) {
        result_.stop_reason = "end_of_text";
        return -1;
    }
    const std::string& bytes = tokenizer_.token_bytes(token);
    result_.tokens.push_back(token);
    sampler_.accept(token, options_.official_penalty_weights ? official_penalty_weight(bytes) : 1.0f);
    const std::string piece = stream_.push(bytes);
    emit(piece);
    if (callbacks_.on_token) callbacks_.on_token(token, piece);
    if (stream_.stopped()) {
        result_.stop_reason = "stop_sequence";
    } else if (static_cast<int64_t>(result_.tokens.size()) >= options_.max_tokens) {
        result_.stop_reason = "max_tokens";
    }
    return token;
}

void SequenceGenerator::stop(const std::string& reason) {
    if (!finished()) result_.stop_reason = reason;
}

GenerateResult SequenceGenerator::finish() {
    if (!finished()) result_.stop_reason = "stopped";
    emit(stream_.finish());
    return std::move(result_);
}

namespace {

// Prefills `ids` in chunks: logits of the last position (1, V); undefined when should_stop ended it first.
at::Tensor prefill_chunks(Model& model, State& state, const std::vector<int32_t>& ids,
                          const GenerateCallbacks& callbacks) {
    const at::Device device(model.options().device);
    at::Tensor logits;
    for (size_t start = 0; start < ids.size(); start += kPrefillChunk) {
        if (callbacks.should_stop && callbacks.should_stop()) return {};
        const int64_t len = std::min<int64_t>(kPrefillChunk, static_cast<int64_t>(ids.size() - start));
        at::Tensor chunk = at::empty({1, len}, at::kLong);  // (1, T)
        std::copy(ids.begin() + start, ids.begin() + start + len, chunk.data_ptr<int64_t>());
        logits = prefill(model, chunk.to(device), state);  // the CPU engine on the CPU
    }
    return logits;
}

// The decode loop shared by every entry: logits (V) or (1, V) of the position to sample next.
GenerateResult decode_loop(Model& model, const Tokenizer& tokenizer, State& state, at::Tensor logits,
                           const GenerateOptions& options, const GenerateCallbacks& callbacks, GenerateStats stats) {
    const auto t0 = std::chrono::steady_clock::now();
    SequenceGenerator seq(tokenizer, options, callbacks);
    if (!logits.defined()) seq.stop("stopped");
    // The steps go through Decoder (CUDA: one CUDA-graph replay per token; CPU: the CPU decode engine); its state is
    // handed back below. A model in training mode steps with Model::step (autograd history kept).
    std::optional<Decoder> decoder;
    if (!model.is_training() && !seq.finished()) {
        decoder.emplace(model, 1);
        decoder->load_state(state);
    }
    const at::Device device(model.options().device);
    while (!seq.finished()) {
        if (callbacks.should_stop && callbacks.should_stop()) {
            seq.stop("stopped");
            break;
        }
        const at::Tensor row = logits.reshape({-1}).to(at::kCPU, at::kFloat).contiguous();  // (V)
        const int32_t token = seq.next(row.data_ptr<float>(), row.numel());
        if (token < 0) break;
        at::Tensor step_tokens = at::full({1}, static_cast<int64_t>(token), at::kLong);  // (B=1)
        logits = decoder ? decoder->step(step_tokens) : model.step(step_tokens.to(device), state);
        if (callbacks.on_stats) {
            stats.tokens = static_cast<int64_t>(seq.result().tokens.size());
            stats.decode_seconds = seconds_since(t0);
            stats.tokens_per_s = stats.decode_seconds > 0 ? double(stats.tokens) / stats.decode_seconds : 0;
            callbacks.on_stats(stats);
        }
    }
    if (decoder) state = decoder->state().clone();
    GenerateResult result = seq.finish();
    result.decode_seconds = seconds_since(t0);
    result.prefill_seconds = stats.prefill_seconds;
    result.prompt_tokens = stats.prompt_tokens;
    return result;
}

}  // namespace

GenerateResult generate(Model& model, const Tokenizer& tokenizer, State& state, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks) {
    AVIARY_CHECK(!prompt.empty(), "generate: the prompt is empty (give at least one character)");
    const int64_t V = model.config().vocab_size;
    for (int32_t id : prompt)
        AVIARY_CHECK(id >= 0 && id < V, "prompt token ", id, " is outside the model's vocabulary of ", V,
                     " (another tokenizer? --tokenizer world|byte)");
    GenerateStats stats;
    stats.prompt_tokens = static_cast<int64_t>(prompt.size());
    const auto t0 = std::chrono::steady_clock::now();
    at::Tensor logits = prefill_chunks(model, state, prompt, callbacks);
    stats.prefill_seconds = seconds_since(t0);
    if (callbacks.on_stats) callbacks.on_stats(stats);
    return decode_loop(model, tokenizer, state, logits, options, callbacks, stats);
}

GenerateResult generate(Model& model, const Tokenizer& tokenizer, State& state, const std::string& prompt,
                        const GenerateOptions& options, const GenerateCallbacks& callbacks) {
    AVIARY_CHECK(!prompt.empty(), "generate: the prompt is empty (give at least one character)");
    return generate(model, tokenizer, state, tokenizer.encode(prompt), options, callbacks);
}

GenerateResult generate_from_logits(Model& model, const Tokenizer& tokenizer, State& state, const at::Tensor& logits,
                                    const GenerateOptions& options, const GenerateCallbacks& callbacks) {
    AVIARY_CHECK(logits.defined() && logits.numel() == model.config().vocab_size,
                 "generate_from_logits: expected the logits of one position (", model.config().vocab_size,
                 " values), got ", logits.defined() ? logits.sizes() : at::IntArrayRef{});
    return decode_loop(model, tokenizer, state, logits, options, callbacks, GenerateStats{});
}

}  // namespace aviary
