// The recurrent state of an Eagle/Finch model (spec §3): per layer the att token-shift vector (LN1 output
// of the last token), the WKV matrix per head (fp32, [key][value] as ChatRWKV/FLA), and the ffn shift.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"

namespace aviary {

class Model;

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
    // The same for a state file already in memory (`size` bytes at `data`; load maps the file and reads it the same
    // way); errors name `source` where they would name the file.
    static State load_bytes(const void* data, size_t size, const std::string& source, Metadata* metadata = nullptr);

    // The same for one model: save() adds the model's fingerprint (state_fingerprint) to the metadata; load() checks
    // the file against the model — layers, every tensor's shape (batch 1 …), and the fingerprint when the file has one
    // — and throws aviary::Error naming the file and the difference ("saved from another model: …"), leaving any state
    // the caller holds untouched.
    void save_for(const Model& model, const std::string& path, Metadata metadata = {}) const;
    static State load_for(const Model& model, const std::string& path, Metadata* metadata = nullptr);
    static State load_for_bytes(const Model& model, const void* data, size_t size, const std::string& source,
                                Metadata* metadata = nullptr);  // in memory, as load_bytes
};

// What identifies the model a state belongs to: version, layers, width, heads, vocabulary, and a hash of the output and
// first-layer norms and of 4096 values spread over the embedding and the head, rounded to bf16 (so the fp32 and bf16
// files of one model agree, and two fine-tunes of one shape differ), e.g. "v6 L12 D768 H12 V65536 #3f2a9c01d4e5b677".
std::string state_fingerprint(const Model& model);

}  // namespace aviary
