// The prefix state cache of the server: the RNN state after a served token sequence (a prompt, or a prompt and its
// completion) with the logits of its last token, keyed by the tokens, least recently used first out within a byte
// budget. A request whose prompt starts with a cached sequence prefills only the rest (nothing when it is the whole
// prompt: its logits are kept). Named states (save_state / load_state) live here too, apart from the LRU budget.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aviary/core/state.h"

namespace aviary::server {

struct CachedState {
    std::vector<int32_t> tokens;  // every token the state covers (the key)
    State state;                  // batch 1
    std::vector<float> logits;    // (V): the logits after tokens.back()
    size_t bytes() const;
};

class StateCache {
public:
    explicit StateCache(size_t capacity_bytes);
    // A copy of the entry with the longest key that is a prefix of `tokens` (or equals it); marks it recently used.
    std::optional<CachedState> lookup(const std::vector<int32_t>& tokens);
    // Stores a copy (an entry with the same key is replaced); evicts the least recently used entries to fit. An
    // entry larger than the whole budget is not stored.
    void insert(const std::vector<int32_t>& tokens, const State& state, const std::vector<float>& logits);
    size_t bytes() const;
    size_t size() const;

private:
    mutable std::mutex mutex_;
    std::list<CachedState> lru_;  // front: most recently used
    size_t capacity_, bytes_ = 0;
};

// States saved under a client's id; at most `capacity`, the least recently used dropped beyond that.
class NamedStates {
public:
    explicit NamedStates(size_t capacity) : capacity_(capacity) {}
    void save(const std::string& id, const State& state, const std::vector<float>& logits, int64_t tokens);
    std::optional<CachedState> load(const std::string& id);  // a copy; tokens holds one value: the count
    bool erase(const std::string& id);
    // id -> tokens the state covers, for GET /v1/states.
    std::map<std::string, int64_t> list() const;

private:
    mutable std::mutex mutex_;
    std::list<std::pair<std::string, CachedState>> lru_;
    size_t capacity_;
};

}  // namespace aviary::server
