// Prefix state cache and named states (state_cache.h). Lookups scan the entries (a few hundred at most within a
// budget of states of megabytes each) comparing token prefixes; entries are deep copies, so a caller that advances a
// looked-up state never changes the cache.
#include "state_cache.h"

#include <algorithm>
#include <cstdint>

namespace aviary::server {

size_t CachedState::bytes() const {
    return state.bytes() + logits.size() * sizeof(float) + tokens.size() * sizeof(int32_t) + 256;
}

StateCache::StateCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

std::optional<CachedState> StateCache::lookup(const std::vector<int32_t>& tokens) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto best = lru_.end();
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        const auto& k = it->tokens;
        if (k.size() > tokens.size() || (best != lru_.end() && k.size() <= best->tokens.size())) continue;
        if (std::equal(k.begin(), k.end(), tokens.begin())) best = it;
    }
    if (best == lru_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, best);
    return CachedState{best->tokens, best->state.clone(), best->logits};
}

void StateCache::insert(const std::vector<int32_t>& tokens, const State& state, const std::vector<float>& logits) {
    CachedState entry{tokens, state.clone(), logits};
    const size_t size = entry.bytes();
    std::lock_guard<std::mutex> lock(mutex_);
    if (size > capacity_) return;
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        if (it->tokens == tokens) {
            bytes_ -= it->bytes();
            lru_.erase(it);
            break;
        }
    }
    while (!lru_.empty() && bytes_ + size > capacity_) {
        bytes_ -= lru_.back().bytes();
        lru_.pop_back();
    }
    bytes_ += size;
    lru_.push_front(std::move(entry));
}

size_t StateCache::bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
}

size_t StateCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lru_.size();
}

void NamedStates::save(const std::string& id, const State& state, const std::vector<float>& logits, int64_t tokens) {
    CachedState entry{{static_cast<int32_t>(std::min<int64_t>(tokens, INT32_MAX))}, state.clone(), logits};
    std::lock_guard<std::mutex> lock(mutex_);
    lru_.remove_if([&](const auto& e) { return e.first == id; });
    lru_.emplace_front(id, std::move(entry));
    while (lru_.size() > capacity_) lru_.pop_back();
}

std::optional<CachedState> NamedStates::load(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        if (it->first != id) continue;
        lru_.splice(lru_.begin(), lru_, it);
        return CachedState{it->second.tokens, it->second.state.clone(), it->second.logits};
    }
    return std::nullopt;
}

bool NamedStates::erase(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t before = lru_.size();
    lru_.remove_if([&](const auto& e) { return e.first == id; });
    return lru_.size() != before;
}

std::map<std::string, int64_t> NamedStates::list() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, int64_t> out;
    for (const auto& [id, e] : lru_) out[id] = e.tokens.empty() ? 0 : e.tokens.front();
    return out;
}

}  // namespace aviary::server
