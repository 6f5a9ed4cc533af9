// The recurrent state of an Eagle/Finch model (spec §3): per layer the att token-shift vector (LN1 output
// of the last token), the WKV matrix per head (fp32, [key][value] as ChatRWKV/FLA), and the ffn shift.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"

namespace aviary {

class State {
public:
    std::vector<at::Tensor> att_shift;  // per layer (B, D) fp32
    std::vector<at::Tensor> wkv;        // per layer (B, H, N, N) fp32, S[b][h][key][value]
    std::vector<at::Tensor> ffn_shift;  // per layer (B, D) fp32

    int n_layer() const { return static_cast<int>(wkv.size()); }
    int64_t batch() const;
    size_t bytes() const;
    State clone() const;  // deep copy: a snapshot that later steps do not touch
    // Batch row b as a state of batch 1 (a deep copy), and the reverse: states of the same layers and shapes (batch
    // any) stacked along the batch dimension in order (deep copies). A batched server moves sequences in and out of
    // one batched state with these; errors name the row or the mismatching layer.
    State row(int64_t b) const;
    static State stack(const std::vector<const State*>& states);

    // safetensors with keys "state.{l}.att_shift", "state.{l}.wkv", "state.{l}.ffn_shift" (atomic write).
    void save(const std::string& path, const Metadata& metadata = {}) const;
    static State load(const std::string& path, Metadata* metadata = nullptr);
};

}  // namespace aviary
