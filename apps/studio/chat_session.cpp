// Chat model, state snapshots, branches and session files (chat_session.h). The streaming loop mirrors
// aviary::generate (core/src/generator.cpp) step for step, over either tokenizer.
#include "chat_session.h"

#include <ATen/ATen.h>

#include <chrono>
#include <optional>

#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/sampler.h"
#include "aviary/core/tokenizer.h"

namespace aviary::studio {

namespace {
constexpr int64_t kPrefillChunk = 256;  // PIPELINE_ARGS.chunk_len, as core's generator
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

struct ChatSession::Impl {
    std::optional<Model> model;
    std::string path, tokenizer_kind;
    std::optional<WorldTokenizer> world;
    ByteTokenizer bytes;
    std::vector<std::string> byte_table;  // token id -> its bytes (byte tokenizer: ids <= 3 decode to "")
    State state, snapshot;
    bool has_snapshot = false;
    std::vector<State> branches;  // one per branch (0 = main); the active one is `state`, stored on leaving
    int active = 0;

    std::vector<int32_t> encode(const std::string& text) const {
        return world ? world->encode(text) : bytes.encode(text);
    }
    const std::string& token_bytes(int32_t id) const {
        if (world) return world->token_bytes(id);
        AVIARY_CHECK(id >= 0 && id < int32_t(byte_table.size()), "token ", id, " is outside the byte vocabulary");
        return byte_table[size_t(id)];
    }
};

ChatSession::ChatSession() : impl_(std::make_unique<Impl>()) {}
ChatSession::~ChatSession() = default;

void ChatSession::load(const std::string& model_path, const std::string& tokenizer, const std::string& vocab_path) {
    AVIARY_CHECK(tokenizer == "byte" || tokenizer == "world", "tokenizer must be 'byte' or 'world', got '", tokenizer,
                 "'");
    auto next = std::make_unique<Impl>();
    next->model.emplace(Model::load(model_path));
    const ModelConfig& cfg = next->model->config();
    if (tokenizer == "world") {
        next->world.emplace(
            WorldTokenizer::load(vocab_path.empty() ? WorldTokenizer::default_vocab_path() : vocab_path));
        AVIARY_CHECK(cfg.vocab_size >= next->world->vocab_size(), "model '", model_path, "' has ", cfg.vocab_size,
                     " tokens but the World vocabulary needs ", next->world->vocab_size(),
                     ": choose the byte tokenizer for byte-level models");
    } else {
        AVIARY_CHECK(cfg.vocab_size >= 256, "model '", model_path, "' has ", cfg.vocab_size,
                     " tokens; the byte tokenizer needs at least 256");
        for (int i = 0; i < cfg.vocab_size; ++i)
            next->byte_table.push_back(i <= ByteTokenizer::kEos || i > 255 ? std::string() : std::string(1, char(i)));
    }
    next->path = model_path;
    next->tokenizer_kind = tokenizer;
    next->state = next->model->new_state(1);
    next->branches.push_back(next->state.clone());
    impl_ = std::move(next);  // the old model is kept until the new one loaded
}

bool ChatSession::loaded() const {
    return impl_->model.has_value();
}
const std::string& ChatSession::model_path() const {
    return impl_->path;
}
const std::string& ChatSession::tokenizer_kind() const {
    return impl_->tokenizer_kind;
}

std::string ChatSession::describe() const {
    if (!loaded()) return "no model";
    const ModelConfig& c = impl_->model->config();
    return std::string(c.version == 5 ? "Eagle" : "Finch") + " v" + c.version_string() + " | " +
           std::to_string(c.n_layer) + " layers | D " + std::to_string(c.n_embd) + " | " + impl_->tokenizer_kind +
           " tokenizer";
}

GenerateResult ChatSession::generate(const std::string& prompt, const GenerateOptions& options,
                                     const std::function<void(const std::string&, const ChatStreamStats&)>& on_text,
                                     const std::function<bool()>& should_stop) {
    AVIARY_CHECK(loaded(), "no chat model is loaded (Settings → chat model)");
    AVIARY_CHECK(!prompt.empty(), "the prompt is empty (type at least one character)");
    Impl& s = *impl_;
    Model& model = *s.model;
    const std::vector<int32_t> tokens_prompt = s.encode(prompt);
    AVIARY_CHECK(!tokens_prompt.empty(), "the prompt encodes to no tokens");
    GenerateResult result;
    ChatStreamStats stats;
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor logits;  // (1, V)
    for (size_t start = 0; start < tokens_prompt.size(); start += kPrefillChunk) {
        if (should_stop && should_stop()) break;
        const int64_t len = std::min<int64_t>(kPrefillChunk, int64_t(tokens_prompt.size() - start));
        at::Tensor chunk = at::empty({1, len}, at::kLong);  // (1, T)
        std::copy(tokens_prompt.begin() + start, tokens_prompt.begin() + start + len, chunk.data_ptr<int64_t>());
        logits = aviary::prefill(model, chunk, s.state);  // the CPU engine on the CPU
    }
    result.prefill_seconds = stats.prefill_seconds = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    Sampler sampler(options.sampler);
    TextStream stream(options.stop);
    auto emit = [&](const std::string& piece) {
        if (piece.empty()) return;
        result.text += piece;
        if (on_text) on_text(piece, stats);
    };
    result.stop_reason = logits.defined() ? "max_tokens" : "stopped";
    for (int i = 0; logits.defined() && i < options.max_tokens; ++i) {
        if (should_stop && should_stop()) {
            result.stop_reason = "stopped";
            break;
        }
        const at::Tensor row = logits.reshape({-1}).to(at::kFloat).contiguous();  // (V)
        const int32_t token = sampler.sample(row.data_ptr<float>(), row.numel());
        // End of text: token 0, and for byte-level ABC models also their EOS byte 3 (ChatRWKV music/run.py).
        const bool end_of_text = token == 0 || (!s.world && token == ByteTokenizer::kEos);
        if (end_of_text && options.stop_at_end_of_text) {
            result.stop_reason = "end_of_text";
            break;
        }
        const std::string& bytes = s.token_bytes(token);
        result.tokens.push_back(token);
        sampler.accept(token, options.official_penalty_weights ? official_penalty_weight(bytes) : 1.0f);
        at::Tensor step_tokens = at::full({1}, int64_t(token), at::kLong);  // (B=1)
        logits = model.step(step_tokens, s.state);
        stats.tokens = int64_t(result.tokens.size());
        const double dt = seconds_since(t0);
        stats.tokens_per_s = dt > 0 ? double(stats.tokens) / dt : 0;
        emit(stream.push(bytes));
        if (stream.stopped()) {
            result.stop_reason = "stop_sequence";
            break;
        }
    }
    emit(stream.finish());
    result.decode_seconds = seconds_since(t0);
    return result;
}

void ChatSession::take_snapshot() {
    AVIARY_CHECK(loaded(), "no chat model is loaded");
    impl_->snapshot = impl_->state.clone();
    impl_->has_snapshot = true;
}
bool ChatSession::has_snapshot() const {
    return impl_->has_snapshot;
}
void ChatSession::restore_snapshot() {
    AVIARY_CHECK(impl_->has_snapshot, "nothing to regenerate: no answer has been generated yet");
    impl_->state = impl_->snapshot.clone();
}
void ChatSession::reset() {
    AVIARY_CHECK(loaded(), "no chat model is loaded");
    impl_->state = impl_->model->new_state(1);
    impl_->has_snapshot = false;
}
size_t ChatSession::state_bytes() const {
    return loaded() ? impl_->state.bytes() : 0;
}
const State& ChatSession::state() const {
    return impl_->state;
}
const State& ChatSession::snapshot() const {
    return impl_->snapshot;
}

int ChatSession::branch() {
    AVIARY_CHECK(loaded(), "no chat model is loaded");
    Impl& m = *impl_;
    m.branches[size_t(m.active)] = m.state.clone();  // the branch being left keeps its state
    m.branches.push_back(m.state.clone());
    m.active = int(m.branches.size()) - 1;
    return m.active;
}
void ChatSession::switch_branch(int index) {
    Impl& m = *impl_;
    AVIARY_CHECK(index >= 0 && index < int(m.branches.size()), "no branch ", index);
    m.branches[size_t(m.active)] = m.state.clone();
    m.state = m.branches[size_t(index)].clone();
    m.active = index;
    m.has_snapshot = false;
}
int ChatSession::branch_count() const {
    return int(impl_->branches.size());
}
int ChatSession::active_branch() const {
    return impl_->active;
}

void ChatSession::save_session(const std::string& path, const std::string& history_json) const {
    AVIARY_CHECK(loaded(), "no chat model is loaded: nothing to save");
    Metadata md;
    md["aviary.studio.history"] = history_json;
    md["aviary.studio.model"] = impl_->path;
    md["aviary.studio.tokenizer"] = impl_->tokenizer_kind;
    impl_->state.save(path, md);
}

std::string ChatSession::load_session(const std::string& path) {
    AVIARY_CHECK(loaded(), "load a chat model before loading a session");
    Metadata md;
    State st = State::load(path, &md);
    const State fresh = impl_->model->new_state(1);
    AVIARY_CHECK(st.n_layer() == fresh.n_layer(), "session '", path, "' has ", st.n_layer(),
                 " layers but the model has ", fresh.n_layer());
    for (int l = 0; l < st.n_layer(); ++l)
        AVIARY_CHECK(st.wkv[l].sizes() == fresh.wkv[l].sizes() && st.att_shift[l].sizes() == fresh.att_shift[l].sizes(),
                     "session '", path, "' layer ", l, " does not fit the loaded model (another model's state?)");
    impl_->state = std::move(st);
    impl_->has_snapshot = false;
    const auto it = md.find("aviary.studio.history");
    return it == md.end() ? std::string("[]") : it->second;
}

bool states_equal(const State& a, const State& b) {
    if (a.n_layer() != b.n_layer()) return false;
    auto same = [](const at::Tensor& x, const at::Tensor& y) {
        return x.defined() == y.defined() && (!x.defined() || (x.sizes() == y.sizes() && at::equal(x, y)));
    };
    for (int l = 0; l < a.n_layer(); ++l)
        if (!same(a.att_shift[l], b.att_shift[l]) || !same(a.wkv[l], b.wkv[l]) || !same(a.ffn_shift[l], b.ffn_shift[l]))
            return false;
    return true;
}

}  // namespace aviary::studio
