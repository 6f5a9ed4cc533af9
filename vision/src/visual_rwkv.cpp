// VisualRWKV-6 model: loading (one prefixed file or RWKV + CLIP + projector files, spec A.9), the projection, the
// odd-block patch flip (v6.0 model.py bidirectional_forward, spec A.4), and greedy answers with a single prefill
// followed by recurrent decoding (spec A.4.6, A.10), timed per phase (AnswerTimings).
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "aviary/core/shipped_model.h"
#include "aviary/core/threads.h"
#include "aviary/vision/visual_rwkv.h"

namespace aviary::vision {

Model::BlockHook odd_block_flip(int64_t begin, int64_t count) {
    return [begin, count](int layer, const at::Tensor& x, bool /*after_block*/) -> at::Tensor {
        if (layer % 2 == 0 || count <= 1 || begin < 0) return x;
        // x[:, begin:begin+count] = x[:, begin:begin+count].flip(1), before the block and again after it
        AVIARY_CHECK(begin + count <= x.size(1), "image patch rows [", begin, ", ", begin + count,
                     ") lie outside the sequence of ", x.size(1));
        return at::cat({x.slice(1, 0, begin), x.slice(1, begin, begin + count).flip({1}), x.slice(1, begin + count)},
                       1);
    };
}

struct VisualRwkv::Impl {
    Model rwkv;
    ClipVision vit;
    at::Tensor proj;  // (n_embd, vit hidden)
    Metadata metadata;
};

VisualRwkv::VisualRwkv() : impl_(std::make_unique<Impl>()) {}
VisualRwkv::~VisualRwkv() = default;
VisualRwkv::VisualRwkv(VisualRwkv&&) noexcept = default;
VisualRwkv& VisualRwkv::operator=(VisualRwkv&&) noexcept = default;

namespace {

bool starts_with(const std::string& s, const char* p) {
    return s.rfind(p, 0) == 0;
}

// RWKV keys of a file: those under "rwkv." (prefix removed) or, when there are none, the plain RWKV names.
TensorList rwkv_part(const TensorList& t) {
    TensorList out;
    for (const auto& x : t)
        if (starts_with(x.name, "rwkv.")) out.push_back({x.name.substr(5), x.tensor});
    if (!out.empty()) return out;
    for (const auto& x : t)
        if (starts_with(x.name, "emb.") || starts_with(x.name, "blocks.") || starts_with(x.name, "ln_out.") ||
            starts_with(x.name, "head."))
            out.push_back(x);
    return out;
}

int64_t heads_from(const Metadata& m) {
    auto it = m.find("clip_heads");
    return it == m.end() ? 0 : std::stoll(it->second);
}

double seconds(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

}  // namespace

VisualRwkv VisualRwkv::load(const std::string& model_path, const std::string& clip_path, const std::string& proj_path,
                            const ModelOptions& options) {
    Metadata meta;
    TensorList t = read_checkpoint(model_path, &meta);
    TensorList rw = rwkv_part(t);
    AVIARY_CHECK(!rw.empty(), "'", model_path,
                 "' holds no RWKV weights (expected emb.weight, blocks.* … or the same "
                 "under 'rwkv.')");
    VisualRwkv m;
    m.impl_->metadata = meta;
    // "auto" keeps the file's precision (Model::from_tensors); with bf16 the RWKV matrices alias the file's tensors (no
    // widened copy: a 1.6B file holds 3.2 GB of them).
    m.impl_->rwkv = Model::from_tensors(rw, options);
    TensorList clip_tensors;
    if (!clip_path.empty()) {
        Metadata clip_meta;
        clip_tensors = read_checkpoint(clip_path, &clip_meta);
        AVIARY_CHECK(
            ClipVision::contains_vision_tower(clip_tensors), "'", clip_path,
            "' holds no CLIP vision tower (expected keys 'vision_model.…', 'vit.vision_model.…' or 'visual.…')");
        m.impl_->vit = ClipVision::load(clip_path, heads_from(clip_meta), options.dtype);
    } else {
        AVIARY_CHECK(ClipVision::contains_vision_tower(t), "'", model_path,
                     "' is a text-only model (no CLIP vision tower 'vit.*'); pass --clip with the vision weights "
                     "(a CLIP file or a VisualRWKV *_visual.pth)");
        m.impl_->vit = ClipVision::from_tensors(t, heads_from(meta), options.dtype);
    }
    const at::Tensor* proj = find_tensor(t, "proj.weight");
    if (!proj) proj = find_tensor(clip_tensors, "proj.weight");
    TensorList proj_tensors;
    if (!proj && !proj_path.empty()) {
        proj_tensors = read_checkpoint(proj_path);
        proj = find_tensor(proj_tensors, "proj.weight");
        if (!proj && proj_tensors.size() == 1) proj = &proj_tensors[0].tensor;
        AVIARY_CHECK(proj, "'", proj_path, "' holds no 'proj.weight'");
    }
    AVIARY_CHECK(proj, "no projector 'proj.weight' in '", model_path, "'", clip_path.empty() ? "" : " or '", clip_path,
                 clip_path.empty() ? "" : "'", "; pass --proj with the projector weights");
    const int64_t D = m.impl_->rwkv.config().n_embd, C = m.impl_->vit.config().hidden;
    AVIARY_CHECK(proj->dim() == 2 && proj->size(0) == D && proj->size(1) == C, "proj.weight has shape ", proj->sizes(),
                 ", expected (", D, ", ", C, ") for RWKV width ", D, " and CLIP width ", C);
    const bool proj_bf16 = options.dtype == "bf16" || (options.dtype == "auto" && proj->scalar_type() == at::kBFloat16);
    m.impl_->proj = proj->to(proj_bf16 ? at::kBFloat16 : at::kFloat).contiguous().clone();
    return m;
}

VisualRwkv VisualRwkv::from_parts(Model rwkv, ClipVision vit, at::Tensor proj) {
    AVIARY_CHECK(proj.dim() == 2 && proj.size(0) == rwkv.config().n_embd && proj.size(1) == vit.config().hidden,
                 "proj has shape ", proj.sizes(), ", expected (", rwkv.config().n_embd, ", ", vit.config().hidden, ")");
    VisualRwkv m;
    m.impl_->rwkv = std::move(rwkv);
    m.impl_->vit = std::move(vit);
    m.impl_->proj = proj.to(at::kFloat).contiguous();
    return m;
}

Model& VisualRwkv::rwkv() {
    return impl_->rwkv;
}
ClipVision& VisualRwkv::vit() {
    return impl_->vit;
}
at::Tensor& VisualRwkv::proj() {
    return impl_->proj;
}
const Model& VisualRwkv::rwkv() const {
    return impl_->rwkv;
}
const ClipVision& VisualRwkv::vit() const {
    return impl_->vit;
}
const Metadata& VisualRwkv::metadata() const {
    return impl_->metadata;
}
int64_t VisualRwkv::image_size() const {
    return impl_->vit.config().image_size;
}
int64_t VisualRwkv::image_rows() const {
    return impl_->vit.config().tokens();
}
int64_t VisualRwkv::patch_rows() const {
    return impl_->vit.config().tokens() - 1;
}

at::Tensor VisualRwkv::project(const at::Tensor& features) const {
    // proj: Linear(C -> D, bias=False), y = f · Wᵀ                       // (B, P + 1, D)
    const at::Tensor& w = impl_->proj;
    if (w.scalar_type() == at::kFloat) return at::linear(features.to(at::kFloat), w);
    return at::linear(features.to(w.scalar_type()), w).to(at::kFloat);  // bf16 weights: oneDNN, fp32 result
}

at::Tensor VisualRwkv::encode_image(const at::Tensor& pixels) const {
    return project(impl_->vit.features(pixels));
}

at::Tensor VisualRwkv::forward(const at::Tensor& ids_before, const at::Tensor& rows, const at::Tensor& ids_after,
                               State& state, bool all_logits) {
    std::vector<at::Tensor> parts;
    int64_t begin = 0;
    if (ids_before.defined() && ids_before.numel() > 0) {
        parts.push_back(impl_->rwkv.embed(ids_before));
        begin = ids_before.size(1);
    }
    if (rows.defined()) {
        AVIARY_CHECK(rows.dim() == 3 && rows.size(1) == image_rows() && rows.size(2) == impl_->rwkv.config().n_embd,
                     "image rows must be (B, ", image_rows(), ", ", impl_->rwkv.config().n_embd, "), got ",
                     rows.sizes());
        parts.push_back(rows.to(at::kFloat));
    }
    if (ids_after.defined() && ids_after.numel() > 0) parts.push_back(impl_->rwkv.embed(ids_after));
    AVIARY_CHECK(!parts.empty(), "empty VisualRWKV input");
    at::Tensor x = parts.size() == 1 ? parts[0] : at::cat(parts, 1);  // (B, T, D), ln0 applied inside block 0
    if (!rows.defined()) return impl_->rwkv.forward_embeddings(x, state, all_logits);
    return impl_->rwkv.forward_embeddings(x, state, all_logits, odd_block_flip(begin, patch_rows()));
}

at::Tensor VisualRwkv::prefill(const at::Tensor& ids_before, const at::Tensor& rows, const at::Tensor& ids_after,
                               State& state) {
    std::shared_ptr<CpuEngine> engine = shared_cpu_engine(impl_->rwkv);
    if (!engine) {
        // bf16 matrices go to oneDNN on LibTorch's pool: give it every thread
        std::optional<TorchThreadsScope> threads;
        if (impl_->rwkv.options().dtype == "bf16" && impl_->rwkv.options().device == "cpu") threads.emplace();
        return forward(ids_before, rows, ids_after, state, /*all_logits=*/false);
    }
    std::vector<at::Tensor> parts;
    int64_t begin = 0;
    if (ids_before.defined() && ids_before.numel() > 0) {
        parts.push_back(impl_->rwkv.embed(ids_before).to(at::kFloat));
        begin = ids_before.size(1);
    }
    if (rows.defined()) {
        AVIARY_CHECK(rows.dim() == 3 && rows.size(0) == 1 && rows.size(1) == image_rows() &&
                         rows.size(2) == impl_->rwkv.config().n_embd,
                     "image rows must be (1, ", image_rows(), ", ", impl_->rwkv.config().n_embd, "), got ",
                     rows.sizes());
        parts.push_back(rows.to(at::kFloat));
    }
    if (ids_after.defined() && ids_after.numel() > 0) parts.push_back(impl_->rwkv.embed(ids_after).to(at::kFloat));
    AVIARY_CHECK(!parts.empty(), "empty VisualRWKV input");
    const at::Tensor x = parts.size() == 1 ? parts[0] : at::cat(parts, 1);
    return engine->prefill_embeddings(x, state, rows.defined() ? begin : -1, rows.defined() ? patch_rows() : 0);
}

TensorList VisualRwkv::state_dict() const {
    TensorList out;
    for (auto& t : impl_->rwkv.state_dict()) out.push_back({"rwkv." + t.name, t.tensor});
    for (auto& t : impl_->vit.state_dict()) out.push_back({"vit." + t.name, t.tensor});
    out.push_back({"proj.weight", impl_->proj});
    return out;
}

void VisualRwkv::save(const std::string& path, const Metadata& metadata) const {
    TensorList out;
    for (auto& t : state_dict()) out.push_back({t.name, t.tensor.detach().to(at::kCPU).contiguous()});
    Metadata m = metadata;
    m["clip_heads"] = std::to_string(impl_->vit.config().heads);
    m["format"] = "visualrwkv-6";
    write_safetensors(path, out, m);
}

AnswerResult answer_question(VisualRwkv& model, const Tokenizer& tokenizer, const at::Tensor& pixels,
                             const std::string& question, const AnswerOptions& options,
                             const std::function<void(const std::string&)>& on_text,
                             const std::function<bool()>& should_stop) {
    AVIARY_CHECK(!question.empty(), "the question is empty");
    AVIARY_CHECK(pixels.dim() == 3 && pixels.size(0) == 3, "pixels must be (3, S, S)");
    const int64_t V = model.rwkv().config().vocab_size;
    AVIARY_CHECK(tokenizer.vocab_size() <= V, "the ", tokenizer.kind(), " tokenizer needs ", tokenizer.vocab_size(),
                 " ids; the model has ", V);
    PromptTokens p = question_prompt(question, options.position, tokenizer);
    for (int32_t id : p.ids) AVIARY_CHECK(id < V, "prompt token ", id, " is outside the model's vocabulary of ", V);
    auto ids = torch::tensor(std::vector<int64_t>(p.ids.begin(), p.ids.end()), torch::kInt64).unsqueeze(0);
    torch::NoGradGuard no_grad;
    using Clock = std::chrono::steady_clock;
    const Clock::time_point t0 = options.started == Clock::time_point{} ? Clock::now() : options.started;
    AnswerResult r;
    // CLIP forward + projection (a bf16 tower takes all threads itself: ClipVision::forward)
    at::Tensor rows = model.encode_image(pixels.unsqueeze(0));
    const Clock::time_point t_image = Clock::now();
    r.timings.image_s = seconds(t0, t_image);
    State state = model.rwkv().new_state(1);
    at::Tensor logits = model.prefill(ids.slice(1, 0, p.image_at), rows, ids.slice(1, p.image_at), state);
    const Clock::time_point t_prefill = Clock::now();
    {
        const ClipVisionConfig& c = model.vit().config();
        const double Tc = double(c.tokens()), h = double(c.hidden), P = double(c.tokens() - 1);
        const double clip = c.layers * (2 * Tc * (4 * h * h + 2 * h * c.intermediate) + 4 * Tc * Tc * h) +
                            2 * P * 3 * c.patch * c.patch * h;
        const ModelConfig& m = model.rwkv().config();
        const double rows = double(p.ids.size() + model.image_rows()), D = double(m.n_embd);
        r.timings.ttft_flops = clip + 2 * Tc * h * D + rows * sequence_flops_per_token(m) + 2.0 * D * m.vocab_size;
    }
    r.timings.prefill_s = seconds(t_image, t_prefill);
    // Greedy decoding as evaluate.py (argmax: temperature 0 and top-k 1, ties to the smaller id), stop at "\n\n" and
    // at the tokenizer's end of text, through the shared loop (core generate_from_logits: the CPU engine or a CUDA
    // graph from the prefilled state).
    GenerateOptions g;
    g.max_tokens = options.max_tokens;
    g.sampler.temperature = 0.0f;
    g.sampler.top_k = 1;
    g.sampler.presence_penalty = g.sampler.frequency_penalty = 0.0f;
    g.stop = {"\n\n"};
    GenerateCallbacks cb;
    cb.on_text = [&](std::string piece) {
        // the answer is stripped, as evaluate.py does: leading blanks ("Assistant: …") are not emitted
        if (r.text.empty()) piece.erase(0, piece.find_first_not_of(" \t"));
        if (piece.empty()) return;
        r.text += piece;
        if (on_text) on_text(piece);
    };
    bool first = true;
    cb.on_token = [&](int32_t, const std::string&) {
        if (first) r.timings.ttft_s = seconds(t0, Clock::now());  // the first token picked
        first = false;
    };
    cb.should_stop = should_stop;
    const GenerateResult out = generate_from_logits(model.rwkv(), tokenizer, state, logits, g, cb);
    r.ids = out.tokens;
    r.tokens = int(out.tokens.size());
    r.prompt_tokens = static_cast<int64_t>(p.ids.size()) + model.image_rows();
    r.stop_reason = out.stop_reason;
    const Clock::time_point t_end = Clock::now();
    r.timings.decode_s = seconds(t_prefill, t_end);
    if (r.tokens == 0 && r.timings.ttft_s == 0) r.timings.ttft_s = seconds(t0, t_end);  // stopped before any token
    return r;
}

std::unique_ptr<Tokenizer> tokenizer_for(const VisualRwkv& model, const std::string& kind,
                                         const std::string& vocab_path) {
    std::string chosen = kind;
    if (chosen.empty()) {
        const auto it = model.metadata().find("tokenizer");
        chosen = it != model.metadata().end() ? it->second : "auto";
    }
    return make_tokenizer(chosen, model.rwkv().config().vocab_size, vocab_path);
}

ImagePosition image_position_for(const VisualRwkv& model, const std::string& given) {
    if (!given.empty()) return parse_image_position(given);
    const auto it = model.metadata().find("image_position");
    return parse_image_position(it != model.metadata().end() ? it->second : "middle");
}

std::string default_model_path() {
    return find_shipped_model("vision-*.safetensors", "AVIARY_VISION_MODEL");
}

}  // namespace aviary::vision
