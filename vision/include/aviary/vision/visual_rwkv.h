// VisualRWKV-6 (spec A.2–A.4, A.9, A.10; VisualRWKV v6.0 src/model.py): CLIP features (patches then CLS) →
// bias-free `proj` into the RWKV width → inserted among the text embeddings; block 0's ln0 normalises the image
// rows with the text; every odd block sees the patch rows in reverse order (bidirectional_forward); answers are
// prefilled once with the flip and then decoded recurrently (greedy, stop at "\n\n", as evaluate.py).
#pragma once
#include <ATen/core/Tensor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/model.h"
#include "aviary/vision/clip_vit.h"
#include "aviary/vision/prompt.h"

namespace aviary::vision {

// Reverses rows [begin, begin + count) of x (B, T, D) along time around every odd block: the hook for
// Model::forward_embeddings (count ≤ 1 or begin < 0: no-op).
Model::BlockHook odd_block_flip(int64_t begin, int64_t count);

class VisualRwkv {
public:
    VisualRwkv();
    ~VisualRwkv();
    VisualRwkv(VisualRwkv&&) noexcept;
    VisualRwkv& operator=(VisualRwkv&&) noexcept;

    // From one file with `rwkv.` / `vit.` / `proj.` prefixes (official VisualRWKV checkpoints, bf16 .pth, and
    // Aviary's own), or a plain RWKV file plus `clip_path` (a CLIP file: HF, full CLIPModel or OpenAI keys; or
    // the official `*_visual.pth` with vit.* + proj.weight) and, when proj.weight is in neither, `proj_path`.
    // A text-only model without a vision tower or projector is an error that says what to pass.
    // options.dtype: "fp32" (the default; every weight widened to fp32, what training needs), "bf16" (the RWKV
    // matrices, the CLIP linear layers and the projector in bf16), or "auto" (each part in its file's precision: a bf16
    // file stays bf16 in memory, anything else is widened to fp32; what inference uses).
    static VisualRwkv load(const std::string& model_path, const std::string& clip_path = "",
                           const std::string& proj_path = "", const ModelOptions& options = {});
    static VisualRwkv from_parts(Model rwkv, ClipVision vit, at::Tensor proj);

    Model& rwkv();
    ClipVision& vit();
    at::Tensor& proj();  // (n_embd, vit hidden), fp32 (bf16 when loaded as bf16)
    const Model& rwkv() const;
    const ClipVision& vit() const;

    // Metadata of the loaded file ("tokenizer", "image_position" written by train_vision; empty for other files).
    const Metadata& metadata() const;

    int64_t image_size() const;  // CLIP input size
    int64_t image_rows() const;  // patches + CLS
    int64_t patch_rows() const;  // patches (the flipped span)

    // Projected image rows (B, P + 1, n_embd) from CLIP features (B, P + 1, vit hidden) in VisualRWKV order.
    at::Tensor project(const at::Tensor& features) const;
    // CLIP forward (frozen unless vit().train(true)) + projection: pixels (B, 3, S, S) -> (B, P + 1, n_embd).
    at::Tensor encode_image(const at::Tensor& pixels) const;

    // The RWKV over [text ids before | image rows | text ids after] (rows (B, P + 1, D) or undefined for a text-only
    // prompt), with the odd-block flip of the patch rows; logits (B, T, V) or of the last position (B, V).
    at::Tensor forward(const at::Tensor& ids_before, const at::Tensor& rows, const at::Tensor& ids_after, State& state,
                       bool all_logits);
    // The same for one prompt (B = 1), logits of the last position (1, V): on the CPU engine (AMX/AVX-512 GEMMs,
    // fused loops; cpu_engine.h prefill_embeddings) when it takes the RWKV model (CPU, inference), else forward().
    at::Tensor prefill(const at::Tensor& ids_before, const at::Tensor& rows, const at::Tensor& ids_after, State& state);

    // State dict in the official layout: rwkv.*, vit.vision_model.*, proj.weight.
    TensorList state_dict() const;
    // Writes that state dict as safetensors (atomic), with metadata (e.g. "tokenizer": "byte").
    void save(const std::string& path, const Metadata& metadata = {}) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct AnswerOptions {
    int max_tokens = 128;
    ImagePosition position = ImagePosition::Middle;
    // When image processing began, so that the caller's decoding and preprocessing of the image count in
    // AnswerTimings::image_s and ttft_s; left at its default (the clock's epoch), the clock starts when
    // answer_question is entered.
    std::chrono::steady_clock::time_point started{};
};
// Where the time of one answer went, in seconds of the steady clock (`aviary vqa --stats`, the studio's Image QA
// panel). ttft_s <= image_s + prefill_s + decode_s.
struct AnswerTimings {
    double image_s = 0;    // from AnswerOptions::started to the projected image rows: preprocessing, CLIP, projection
    double prefill_s = 0;  // the prompt with the image rows in sequence mode, up to the first logits
    double decode_s = 0;   // after the prefill: every token picked and every recurrent step
    double ttft_s = 0;     // from AnswerOptions::started to the first token picked
    // Arithmetic up to the first token: the CLIP tower and projection of the image, the prompt's sequence-mode pass
    // (2 FLOPs per weight per row, attention and WKV included) and one head product. Divided by a measured GEMM rate
    // it is the time-to-first-token compute floor (`aviary vqa --stats`).
    double ttft_flops = 0;
};
struct AnswerResult {
    std::string text;  // without the "\n\n" stop
    int tokens = 0;
    int64_t prompt_tokens = 0;  // the question's text ids plus the image rows, as prefilled
    std::vector<int32_t> ids;   // the generated tokens (stop sequence included)
    std::string stop_reason;    // "stop_sequence", "end_of_text", "max_tokens", "stopped"
    AnswerTimings timings;
};
// Greedy answer to one question about preprocessed pixels (3, S, S) (spec A.10): the prompt
// "User: {q}\n<image>\n{q}\n\nAssistant:" (middle) prefilled with the flip, then RNN steps through core
// generate_from_logits (stop at "\n\n" or the tokenizer's end of text); text streamed through on_text as complete
// UTF-8. With bf16 weights the CLIP forward, the prefill and the decoding run with all threads
// on LibTorch's pool (TorchThreadsScope: its bf16 matrix products go to oneDNN).
AnswerResult answer_question(VisualRwkv& model, const Tokenizer& tokenizer, const at::Tensor& pixels,
                             const std::string& question, const AnswerOptions& options = {},
                             const std::function<void(const std::string&)>& on_text = {},
                             const std::function<bool()>& should_stop = {});

// The tokenizer of a VisualRWKV model: `kind` ("world" | "byte") when given, else the model's metadata "tokenizer"
// (what `aviary train vision` records), else by its vocabulary size (<= 256 ids: byte; make_tokenizer "auto").
// vocab_path "" = the default World vocabulary. The one choice the CLI and the studio share.
std::unique_ptr<Tokenizer> tokenizer_for(const VisualRwkv& model, const std::string& kind = "",
                                         const std::string& vocab_path = "");

// The image's place in a question prompt for a VisualRWKV model: `given` ("first" | "middle" | "last") when not
// empty, else the one it was trained with (metadata "image_position", what `aviary train vision` records), else
// middle. The one choice the CLI, the studio and the server share.
ImagePosition image_position_for(const VisualRwkv& model, const std::string& given = "");

// The shipped demo model (core find_shipped_model): $AVIARY_VISION_MODEL, the installed share/aviary/models/, then
// assets/models/ of the source tree (vision-*.safetensors); an error naming the places when none is found.
std::string default_model_path();

}  // namespace aviary::vision
