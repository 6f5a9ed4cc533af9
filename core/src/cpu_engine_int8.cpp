// int8 checkpoints (cpu_engine_int8.h): per-row symmetric quantisation of the engine's matrices through
// quantize_rows_int8 (quantize_int8.cpp) and the inverse for loading.
#include "aviary/core/cpu_engine_int8.h"

#include <ATen/ATen.h>

#include <map>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/error.h"

namespace aviary {
namespace {
constexpr const char* kScaleSuffix = ".int8_scale";

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

TensorList quantize_checkpoint_int8(const TensorList& tensors) {
    AVIARY_CHECK(!is_int8_checkpoint(tensors), "the checkpoint is already int8");
    TensorList out;
    for (const auto& nt : tensors) {
        if (!is_matrix_weight(nt.name) || nt.tensor.dim() != 2 || !at::isFloatingType(nt.tensor.scalar_type())) {
            out.push_back(nt);
            continue;
        }
        const at::Tensor w = nt.tensor.to(at::kFloat).contiguous();
        at::Tensor q = at::empty(w.sizes(), at::kChar), s = at::empty({w.size(0)}, at::kFloat);
        cpu::quantize_rows_int8(w.data_ptr<float>(), w.size(0), w.size(1), q.data_ptr<int8_t>(), s.data_ptr<float>());
        out.push_back({nt.name, q});
        out.push_back({nt.name + kScaleSuffix, s});
    }
    return out;
}

bool is_int8_checkpoint(const TensorList& tensors) {
    for (const auto& nt : tensors)
        if (ends_with(nt.name, kScaleSuffix)) return true;
    return false;
}

TensorList dequantize_checkpoint_int8(const TensorList& tensors) {
    std::map<std::string, at::Tensor> scales;
    for (const auto& nt : tensors)
        if (ends_with(nt.name, kScaleSuffix))
            scales[nt.name.substr(0, nt.name.size() - std::string(kScaleSuffix).size())] = nt.tensor;
    TensorList out;
    for (const auto& nt : tensors) {
        if (ends_with(nt.name, kScaleSuffix)) {
            AVIARY_CHECK(find_tensor(tensors, nt.name.substr(0, nt.name.size() - std::string(kScaleSuffix).size())),
                         "int8 checkpoint: scale '", nt.name, "' has no matrix");
            continue;
        }
        if (nt.tensor.scalar_type() != at::kChar) {
            out.push_back(nt);
            continue;
        }
        auto it = scales.find(nt.name);
        AVIARY_CHECK(it != scales.end(), "int8 checkpoint: '", nt.name, "' is int8 but '", nt.name, kScaleSuffix,
                     "' is missing");
        AVIARY_CHECK(nt.tensor.dim() == 2 && it->second.dim() == 1 && it->second.size(0) == nt.tensor.size(0),
                     "int8 checkpoint: '", nt.name, kScaleSuffix, "' has shape ", it->second.sizes(), ", expected (",
                     nt.tensor.size(0), ") for the matrix of shape ", nt.tensor.sizes());
        out.push_back({nt.name, nt.tensor.to(at::kFloat) * it->second.to(at::kFloat).unsqueeze(1)});
    }
    return out;
}

}  // namespace aviary
