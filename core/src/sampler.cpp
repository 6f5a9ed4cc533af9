// Token sampling with the official semantics: sample_logits follows ChatRWKV PIPELINE.sample_logits (CPU
// path, rwkv 0.8.32 utils.py; spec §6.2) step for step, and Sampler adds token bans and the decayed
// presence/frequency penalties of PIPELINE.generate (spec §6.3). The descending sort of the probabilities
// is a counting sort into bins by value followed by sorting the bins (a radix sort on the remaining bits) from the
// largest only until the fp32 cumulative sum reaches top_p: the same cumsum, cutoff and survivors as a full sort.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "aviary/core/error.h"
#include "aviary/core/sampler.h"

namespace aviary {
namespace {

// Bins of the counting sort: the fp32 bit pattern shifted right by kBinShift (sign 0, 8 exponent bits and
// 3 mantissa bits: 8 bins per octave). Probabilities are <= 1.0f = 0x3F800000, hence kBins.
constexpr int kBinShift = 20;
constexpr size_t kBins = (0x3F800000u >> kBinShift) + 1;

// Sorts one bin's ids by descending probability, ties by ascending id. The counting sort fills every bin in
// ascending id order and the bin fixes all but the low kBinShift bits of the fp32 pattern, so two stable counting
// passes (LSD radix, 10 bits each) over those bits give that order exactly; small bins take a comparison sort.
void sort_bin(int32_t* ids, size_t n, const float* probs) {
    auto key = [&](int32_t id) {
        uint32_t bits;
        std::memcpy(&bits, &probs[id], sizeof bits);
        return ((1u << kBinShift) - 1) - (bits & ((1u << kBinShift) - 1));  // ascending key = descending value
    };
    if (n < 256) {
        std::sort(ids, ids + n, [&](int32_t a, int32_t b) { return key(a) < key(b) || (key(a) == key(b) && a < b); });
        return;
    }
    static_assert(kBinShift == 20, "two 10-bit passes cover the bits below the bin");
    thread_local std::vector<int32_t> tmp;
    tmp.resize(n);
    uint32_t count[1024];
    int32_t* src = ids;
    int32_t* dst = tmp.data();
    for (int shift : {0, 10}) {
        std::fill(count, count + 1024, 0u);
        for (size_t i = 0; i < n; ++i) ++count[(key(src[i]) >> shift) & 1023u];
        uint32_t sum = 0;
        for (uint32_t& c : count) {
            const uint32_t here = c;
            c = sum;
            sum += here;
        }
        for (size_t i = 0; i < n; ++i) dst[count[(key(src[i]) >> shift) & 1023u]++] = src[i];
        std::swap(src, dst);
    }
    // two passes: the result is back in ids
}

}  // namespace

int32_t sample_logits(const float* logits, int64_t n, float temperature, float top_p, int top_k, std::mt19937_64& rng) {
    AVIARY_CHECK(n > 0, "sample_logits: empty logits");
    AVIARY_CHECK(temperature >= 0.0f && std::isfinite(temperature), "sample_logits: temperature must be ≥ 0, got ",
                 temperature);
    // Step 1: temperature 0 means greedy.
    if (temperature == 0.0f) {
        temperature = 1.0f;
        top_p = 0.0f;
    }
    thread_local std::vector<float> probs;    // (V)
    thread_local std::vector<int32_t> order;  // ids sorted by descending probability (processed buckets only)
    probs.resize(static_cast<size_t>(n));
    order.clear();

    // Step 2: probs = softmax(logits) in fp32.
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
        AVIARY_CHECK(!std::isnan(logits[i]), "sample_logits: logit ", i, " is NaN");
        max_logit = std::max(max_logit, logits[i]);
    }
    AVIARY_CHECK(max_logit > -std::numeric_limits<float>::infinity(),
                 "sample_logits: every logit is -inf (are all tokens banned?)");
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        probs[i] = std::exp(logits[i] - max_logit);
        sum += probs[i];
    }
    const float inv_sum = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) probs[i] *= inv_sum;

    // Step 3: sorted descending, cumsum (sequential fp32, as np.cumsum); cutoff = sorted prob at the first
    // index with cumsum >= top_p (index 0 when none is: argmax of an all-false array).
    // The order is built lazily: a counting sort on the top bits of the fp32 pattern (exponent and 3 mantissa
    // bits; for p >= 0 the bit pattern orders like the value) puts the ids into bins of descending value,
    // and bins are sorted one by one, from the largest, only until the cumsum reaches top_p. Equal values
    // share a bin, so the survivors (ties at the cutoff included) are exactly a prefix of `order`.
    auto bin_of = [](float p) {
        uint32_t bits;
        std::memcpy(&bits, &p, sizeof bits);
        return static_cast<size_t>(bits >> kBinShift);
    };
    thread_local std::vector<uint32_t> bin_start;  // (kBins + 1) offsets into order, bins by descending value
    bin_start.assign(kBins + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++bin_start[kBins - 1 - bin_of(probs[i]) + 1];
    for (size_t b = 0; b < kBins; ++b) bin_start[b + 1] += bin_start[b];
    order.resize(static_cast<size_t>(n));
    {
        thread_local std::vector<uint32_t> fill;
        fill.assign(bin_start.begin(), bin_start.end() - 1);
        for (int64_t i = 0; i < n; ++i) order[fill[kBins - 1 - bin_of(probs[i])]++] = static_cast<int32_t>(i);
    }
    float cumsum = 0.0f;
    int64_t cut_index = -1;
    size_t sorted_end = 0;  // order[0, sorted_end) is sorted
    for (size_t b = 0; b < kBins && cut_index < 0; ++b) {
        const size_t begin = bin_start[b], end = bin_start[b + 1];
        if (begin == end) continue;
        sort_bin(order.data() + begin, end - begin, probs.data());
        for (size_t k = begin; k < end; ++k) {
            cumsum += probs[order[k]];
            if (cumsum >= top_p) {
                cut_index = static_cast<int64_t>(k);
                break;
            }
        }
        sorted_end = end;
    }
    const float cutoff = probs[order[cut_index >= 0 ? cut_index : 0]];
    // probs[probs < cutoff] = 0: the survivors are the prefix of `order` with prob >= cutoff.
    size_t n_keep = 0;
    while (n_keep < sorted_end && probs[order[n_keep]] >= cutoff) ++n_keep;

    // Step 4: top_k keeps the k largest (ties at the k-th value broken towards the smaller id).
    if (top_k > 0 && top_k < n) n_keep = std::min(n_keep, static_cast<size_t>(top_k));

    // Step 5: temperature acts on the probabilities: p ** (1 / T) (fp32 pow, exponent rounded to fp32).
    const float inv_temperature = static_cast<float>(1.0 / static_cast<double>(temperature));
    double total = 0.0;
    for (size_t k = 0; k < n_keep; ++k) {
        float& p = probs[order[k]];
        if (temperature != 1.0f) p = std::pow(p, inv_temperature);
        total += p;
    }
    // Every weight underflowed (tiny temperature): the official code would divide 0/0; take the argmax.
    if (!(total > 0.0)) return order[0];

    // Step 6: draw proportionally to the weights (a uniform point on their cumulative mass).
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng) * total;
    double acc = 0.0;
    for (size_t k = 0; k < n_keep; ++k) {
        acc += probs[order[k]];
        if (u < acc) return order[k];
    }
    for (size_t k = n_keep; k-- > 0;) {  // rounding put u at the very top: the last token with weight
        if (probs[order[k]] > 0.0f) return order[k];
    }
    return order[0];
}

Sampler::Sampler(SamplerOptions options) : options_(std::move(options)), rng_(options_.seed) {}

void Sampler::adjust_logits(float* logits, int64_t n) const {
    // out[n] = -inf for banned tokens, then out[n] -= alpha_presence + occurrence[n] * alpha_frequency.
    for (int32_t t : options_.banned) {
        if (t >= 0 && t < n) logits[t] = -std::numeric_limits<float>::infinity();
    }
    for (const auto& [t, w] : occurrence_) {
        if (t >= 0 && t < n) {
            const double penalty = double(options_.presence_penalty) + w * double(options_.frequency_penalty);
            logits[t] = static_cast<float>(logits[t] - penalty);
        }
    }
}

int32_t Sampler::sample(const float* logits, int64_t n) {
    logits_work_.assign(logits, logits + n);
    adjust_logits(logits_work_.data(), n);
    return sample_logits(logits_work_.data(), n, options_.temperature, options_.top_p, options_.top_k, rng_);
}

void Sampler::accept(int32_t token, float weight) {
    // for xxx in occurrence: occurrence[xxx] *= alpha_decay; then occurrence[token] += www.
    bool found = false;
    for (auto& [t, w] : occurrence_) {
        w *= double(options_.penalty_decay);
        if (t == token) {
            w += weight;
            found = true;
        }
    }
    if (!found) occurrence_.emplace_back(token, double(weight));
}

float Sampler::occurrence(int32_t token) const {
    for (const auto& [t, w] : occurrence_) {
        if (t == token) return static_cast<float>(w);
    }
    return -1.0f;
}

void Sampler::reset() {
    occurrence_.clear();
    rng_.seed(options_.seed);
}

}  // namespace aviary
