// The shared CPU engine of each model (cpu_engine.h shared_cpu_engine), built with the model's own engine options and
// kept in the model's derived_cache() so that it lives and dies with the model and several models keep one each.
#include <ATen/ATen.h>

#include <mutex>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"

namespace aviary {

namespace {
std::mutex g_cache_mutex;  // every model's derived_cache() slot (a model may be shared by threads)

// What a model's derived_cache() holds: its engine and what it was built from.
struct CachedEngine {
    at::Tensor identity;    // the model's first state_dict tensor when it was built (a replaced tensor: rebuild)
    uint64_t versions = 0;  // Σ of the parameters' version counters: in-place updates (training, merge_lora) bump it
    std::shared_ptr<CpuEngine> engine;
};
}  // namespace

std::shared_ptr<CpuEngine> shared_cpu_engine(const Model& model) {
    if (!CpuEngine::supports(model)) return nullptr;
    const TensorList sd = model.state_dict();
    AVIARY_CHECK(!sd.empty(), "internal: empty model");
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    const at::Tensor& id = sd.front().tensor;
    uint64_t versions = 0;
    for (const auto& nt : sd) versions += nt.tensor._version();
    std::shared_ptr<void>& slot = model.derived_cache();
    auto* cached = static_cast<CachedEngine*>(slot.get());
    if (cached && cached->identity.is_same(id) && cached->versions == versions) return cached->engine;
    slot.reset();  // frees the model's previous engine first (an int8 0.4B engine is ~0.5 GB)
    auto fresh = std::make_shared<CachedEngine>();
    fresh->engine = std::make_shared<CpuEngine>(model, model.options().cpu_engine);
    fresh->identity = id;
    fresh->versions = versions;
    slot = fresh;
    return fresh->engine;
}

}  // namespace aviary
