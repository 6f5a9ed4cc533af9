// Loss by byte position over ABC tunes (the paper's music figure): each tune framed as the official models are
// trained (BOS + bytes + EOS), then the shared per-position loss of core/loss_by_position.h.
#include "aviary/core/error.h"
#include "aviary/music/abc.h"
#include "aviary/music/music.h"

namespace aviary::music {

PositionLoss loss_by_position(Model& model, const std::vector<std::string>& tunes_abc, int64_t max_len,
                              const std::function<bool(int64_t, int64_t)>& on_progress) {
    AVIARY_CHECK(!tunes_abc.empty(), "no tunes to evaluate");
    std::vector<std::vector<int32_t>> sequences;
    sequences.reserve(tunes_abc.size());
    for (const auto& tune : tunes_abc) {
        std::string framed = tune;
        if (framed.empty() || framed.front() != char(kBos)) framed = frame_tune(framed);
        sequences.push_back(encode_abc(framed));
    }
    return aviary::loss_by_position(model, sequences, max_len, on_progress);
}

}  // namespace aviary::music
