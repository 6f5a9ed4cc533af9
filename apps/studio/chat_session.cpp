// Chat model, state snapshots, branches and session files (chat_session.h). Answers come from core generate()
// (core/src/generator.cpp): chunked prefill, then the decoder (the CPU engine on the CPU), over either tokenizer.
#include "chat_session.h"

#include <ATen/ATen.h>

#include <optional>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/tokenizer.h"

namespace aviary::studio {

struct ChatSession::Impl {
    std::optional<Model> model;
    std::string path, tokenizer_kind;
    std::unique_ptr<Tokenizer> tokenizer;
    State state, snapshot;
    bool has_snapshot = false;
    std::vector<State> branches;  // one per branch (0 = main); the active one is `state`, stored on leaving
    int active = 0;
};

ChatSession::ChatSession() : impl_(std::make_unique<Impl>()) {}
ChatSession::~ChatSession() = default;

void ChatSession::load(const std::string& model_path, const std::string& tokenizer, const std::string& vocab_path) {
    AVIARY_CHECK(tokenizer == "byte" || tokenizer == "world" || tokenizer == "auto",
                 "tokenizer must be 'byte', 'world' or 'auto', got '", tokenizer, "'");
    auto next = std::make_unique<Impl>();
    next->model.emplace(Model::load(model_path));
    try {
        next->tokenizer = make_tokenizer(tokenizer, next->model->config().vocab_size, vocab_path);
    } catch (const Error& e) {  // make_tokenizer names the sizes; add the file
        AVIARY_FAIL("model '", model_path, "': ", e.what());
    }
    next->path = model_path;
    next->tokenizer_kind = next->tokenizer->kind();
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
    ChatStreamStats stats;
    GenerateCallbacks cb;
    cb.on_stats = [&](const GenerateStats& g) {
        stats.tokens = g.tokens;
        stats.tokens_per_s = g.tokens_per_s;
        stats.prefill_seconds = g.prefill_seconds;
    };
    if (on_text) cb.on_text = [&](const std::string& piece) { on_text(piece, stats); };
    cb.should_stop = should_stop;
    return aviary::generate(*s.model, *s.tokenizer, s.state, prompt, options, cb);
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
    impl_->state.save_for(*impl_->model, path, md);
}

std::string ChatSession::load_session(const std::string& path) {
    AVIARY_CHECK(loaded(), "load a chat model before loading a session");
    Metadata md;
    State st = State::load_for(*impl_->model, path, &md);  // shapes and the model's fingerprint checked
    AVIARY_CHECK(st.batch() == 1, "session '", path, "' holds ", st.batch(), " sequences; a chat has one");
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
