// Seeded window sampler (train_data.h): epoch e visits the windows shift_e +
// k·ctx_len in a Fisher–Yates order drawn from mt19937_64(seed, e).
// std::shuffle and std::uniform_int_distribution are implementation-defined, so
// the bounded draws are done here by rejection: the order is the same on every
// platform and after a resume.
#include <ATen/ATen.h>

#include <random>

#include "aviary/core/error.h"
#include "aviary/core/train_data.h"

namespace aviary {
namespace {

// Uniform integer in [0, n) by rejection (exact, portable).
uint64_t draw_below(std::mt19937_64& rng, uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng();
    while (x >= limit);
    return x % n;
}

}  // namespace

WindowSampler::WindowSampler(const TokenSource& source, int64_t ctx_len, uint64_t seed)
    : source_(source), ctx_len_(ctx_len), seed_(seed) {
    AVIARY_CHECK(ctx_len >= 1, "ctx_len must be >= 1, got ", ctx_len);
    AVIARY_CHECK(source.size() >= ctx_len + 1, "training data ", source.describe(), " is too small: it has ",
                 source.size(), " tokens, a window of ctx_len + 1 = ", ctx_len + 1, " is needed");
    per_epoch_ = (source.size() - 1) / ctx_len;
}

int64_t WindowSampler::window_start(int64_t index) const {
    AVIARY_CHECK(index >= 0, "negative sample index");
    const int64_t epoch = index / per_epoch_, k = index % per_epoch_;
    if (epoch != cached_epoch_) {
        std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(epoch) * 0xD1B54A32D192ED03ull + 1);
        order_.resize(size_t(per_epoch_));
        for (int64_t i = 0; i < per_epoch_; ++i) order_[size_t(i)] = i;
        for (int64_t i = per_epoch_ - 1; i > 0; --i)
            std::swap(order_[size_t(i)], order_[draw_below(rng, uint64_t(i) + 1)]);
        // The tokens left over after per_epoch_ windows let each epoch start at a
        // different offset.
        const int64_t slack = source_.size() - 1 - per_epoch_ * ctx_len_;
        shift_ = static_cast<int64_t>(draw_below(rng, uint64_t(slack) + 1));
        cached_epoch_ = epoch;
    }
    return shift_ + order_[size_t(k)] * ctx_len_;
}

at::Tensor WindowSampler::windows(int64_t index, int64_t count) const {
    at::Tensor out = at::empty({count, ctx_len_ + 1}, at::kLong);  // (count, T + 1)
    int64_t* p = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) source_.read(window_start(index + i), ctx_len_ + 1, p + i * (ctx_len_ + 1));
    return out;
}

}  // namespace aviary
