// The worker's Chat channel (studio_worker.h): load a chat model, answer (plain or World chat format) through
// ChatSession with streamed text and stats, regenerate from the snapshot, branches, session files.
#include "studio_worker.h"

#include <chrono>

#include "aviary/core/chat_format.h"
#include "aviary/core/error.h"
#include "chat_session.h"

namespace aviary::studio {

void StudioWorker::load_chat_model(const std::string& path, const std::string& tokenizer, const std::string& vocab) {
    post("load chat model", Channel::Chat, [=] {
        emit(EventKind::Log, Channel::Chat, "loading '" + path + "' (" + tokenizer + " tokenizer)");
        chat_->load(path, tokenizer, vocab);
        emit(EventKind::ModelLoaded, Channel::Chat, chat_->describe(), double(chat_->state_bytes()));
        emit(EventKind::Log, Channel::Chat, "chat model: " + chat_->describe());
    });
}

void StudioWorker::run_chat(const std::string& prompt, const GenerateOptions& options) {
    auto last_stats = std::chrono::steady_clock::now();
    const GenerateResult r = chat_->generate(
        prompt, options,
        [&](const std::string& piece, const ChatStreamStats& st) {
            emit(EventKind::Text, Channel::Chat, piece);
            const auto now = std::chrono::steady_clock::now();
            if (now - last_stats > std::chrono::milliseconds(200)) {
                last_stats = now;
                emit(EventKind::Stats, Channel::Chat, "", st.tokens_per_s, double(chat_->state_bytes()), st.tokens);
            }
        },
        [this] { return should_stop(); });
    const double tps = r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0;
    emit(EventKind::Stats, Channel::Chat, "", tps, double(chat_->state_bytes()), int64_t(r.tokens.size()));
    emit(EventKind::Done, Channel::Chat, r.stop_reason, r.prefill_seconds, r.decode_seconds, int64_t(r.tokens.size()));
}

void StudioWorker::chat_send(const ChatRequest& request) {
    post("chat", Channel::Chat, [=] {
        AVIARY_CHECK(chat_->loaded(), "no chat model is loaded (Settings: chat model)");
        std::string prompt = request.user_text;
        GenerateOptions o = request.options;
        if (request.chat_format) {
            prompt = chat_turn("User", request.user_text) + kChatAssistantPrefix;  // World chat format
            o.stop.push_back("\n\nUser:");
        }
        chat_->take_snapshot();
        chat_last_prompt_ = prompt;
        chat_last_stop_ = o.stop;
        run_chat(prompt, o);
    });
}

void StudioWorker::chat_regenerate(const GenerateOptions& options) {
    post("regenerate", Channel::Chat, [=] {
        AVIARY_CHECK(chat_->has_snapshot() && !chat_last_prompt_.empty(), "nothing to regenerate yet");
        chat_->restore_snapshot();
        emit(EventKind::Regenerate, Channel::Chat);
        GenerateOptions o = options;
        o.stop = chat_last_stop_;
        run_chat(chat_last_prompt_, o);
    });
}

void StudioWorker::chat_branch() {
    post("branch", Channel::Chat, [=] {
        const int i = chat_->branch();
        emit(EventKind::Branched, Channel::Chat, "", 0, 0, i);
    });
}

void StudioWorker::chat_switch_branch(int index) {
    post("switch branch", Channel::Chat, [=] {
        chat_->switch_branch(index);
        emit(EventKind::BranchSwitched, Channel::Chat, "", 0, 0, index);
    });
}

void StudioWorker::chat_reset() {
    post("reset chat", Channel::Chat, [=] {
        chat_->reset();
        chat_last_prompt_.clear();
        emit(EventKind::Stats, Channel::Chat, "", 0, double(chat_->state_bytes()), 0);
    });
}

void StudioWorker::chat_save_session(const std::string& path, const std::string& history_json) {
    post("save session", Channel::Chat, [=] {
        chat_->save_session(path, history_json);
        emit(EventKind::SessionSaved, Channel::Chat, path);
        emit(EventKind::Log, Channel::Chat, "session saved to '" + path + "'");
    });
}

void StudioWorker::chat_load_session(const std::string& path) {
    post("load session", Channel::Chat, [=] {
        const std::string history = chat_->load_session(path);
        emit(EventKind::SessionLoaded, Channel::Chat, history);
        emit(EventKind::Log, Channel::Chat, "session loaded from '" + path + "'");
    });
}

}  // namespace aviary::studio
