// Sampling with the official semantics (ChatRWKV utils.py, spec §6.2–6.3): softmax, top-p cutoff with
// "≥" (ties kept), top-k, temperature applied to probabilities afterwards, presence/frequency penalties
// decayed per step; a seeded generator so runs repeat.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace aviary {

struct SamplerOptions {
    float temperature = 1.0f;
    float top_p = 0.85f;
    int top_k = 0;                   // 0 = off
    float presence_penalty = 0.2f;   // alpha_presence
    float frequency_penalty = 0.2f;  // alpha_frequency
    float penalty_decay = 0.996f;    // alpha_decay
    uint64_t seed = 42;
    std::vector<int32_t> banned;  // logits set to -inf
};

// One draw from logits[0..n) following spec §6.2 exactly (no penalties).
int32_t sample_logits(const float* logits, int64_t n, float temperature, float top_p, int top_k, std::mt19937_64& rng);

class Sampler {
public:
    explicit Sampler(SamplerOptions options = {});
    // Applies bans and penalties to a copy of the logits, then samples.
    int32_t sample(const float* logits, int64_t n);
    // Bans (-inf) and penalties (logit[t] -= presence + occurrence[t] * frequency), in place (spec §6.3).
    void adjust_logits(float* logits, int64_t n) const;
    // Current decayed occurrence weight of a token; -1 when it was never accepted (no presence penalty).
    float occurrence(int32_t token) const;
    // Records a generated token: occurrences *= decay, then += weight (official: 0 for whitespace/digit tokens).
    void accept(int32_t token, float weight = 1.0f);
    void reset();
    const SamplerOptions& options() const { return options_; }

private:
    SamplerOptions options_;
    std::mt19937_64 rng_;
    std::vector<std::pair<int32_t, double>> occurrence_;  // token -> decayed weight (double, as in Python)
    std::vector<float> logits_work_;                      // (V) adjusted copy of the logits
};

}  // namespace aviary
