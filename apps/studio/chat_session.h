// The chat model the worker owns: an Eagle/Finch model with the World or the byte tokenizer, the running
// State, the snapshot taken before each answer (Regenerate restores it), branches (clones of the state) and
// session files (State::save with the history in its metadata). RWKV's state is fixed-size, so a snapshot is
// a cheap deep copy (style_anchors §4.1; rwkv.cpp's explicit state buffers).
// Only the worker thread calls this class.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/generator.h"

namespace aviary::studio {

struct ChatStreamStats {
    int64_t tokens = 0;
    double tokens_per_s = 0;  // decode speed so far
    double prefill_seconds = 0;
};

class ChatSession {
public:
    ChatSession();
    ~ChatSession();

    // tokenizer: "byte" (ByteTokenizer: one id per byte, for ABC models like the shipped one), "world" or "auto" (by
    // the model's vocabulary size: make_tokenizer). A tokenizer that does not fit the model is an error naming it.
    void load(const std::string& model_path, const std::string& tokenizer, const std::string& vocab_path = "");
    bool loaded() const;
    std::string describe() const;  // "Eagle v5.2 | 4 layers | D 256 | byte tokenizer"
    const std::string& model_path() const;
    const std::string& tokenizer_kind() const;

    // Streams an answer to `prompt`, advancing the state over prompt and answer: aviary::generate (core/src/
    // generator.cpp: chunked prefill, then the decoder — the CPU engine on the CPU —, Sampler, official penalty
    // weights, stop sequences, the tokenizer's end ids: 0, and EOS 3 with the byte tokenizer), its on_stats giving
    // the live tokens/s passed with each text piece.
    GenerateResult generate(const std::string& prompt, const GenerateOptions& options,
                            const std::function<void(const std::string&, const ChatStreamStats&)>& on_text,
                            const std::function<bool()>& should_stop);

    void take_snapshot();  // the state before an answer
    bool has_snapshot() const;
    void restore_snapshot();  // state = copy of the snapshot
    void reset();             // a fresh state (and no snapshot)
    size_t state_bytes() const;
    const State& state() const;
    const State& snapshot() const;

    // Branches: 0 is the main line. branch() keeps the current state for the branch being left and starts a new
    // branch from a copy of it (returns its index, now active); switch_branch stores the current state in the
    // active branch and continues from the state of `index`.
    int branch();
    void switch_branch(int index);
    int branch_count() const;
    int active_branch() const;

    // Session file: the state (safetensors) with metadata "aviary.studio.history" (JSON text), model path and
    // tokenizer. load_session checks that the state fits the loaded model and returns the history text.
    void save_session(const std::string& path, const std::string& history_json) const;
    std::string load_session(const std::string& path);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Two states are equal when every tensor has the same shape and the same values (exact).
bool states_equal(const State& a, const State& b);

}  // namespace aviary::studio
