// The generic Trainer (trainer.h): AdamW (β 0.9/0.99, eps 1e-8) with the
// official RWKV parameter groups and LR multipliers (spec §7.4, LM model.py
// @86affd7 `configure_optimizers`), gradient accumulation and clipping,
// freezing by glob, the L2Wrap autograd function (spec §7.5, LM model.py
// `L2Wrap`) and the masked LM loss. The training precision (trainer.h
// TrainPrecision) is decided and applied here, for every trainer: bf16 is
// LibTorch's CPU autocast (as `torch.autocast("cpu", torch.bfloat16)`) around
// each micro-batch's forward and loss, fp32 master weights and AdamW.
#include "aviary/core/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/library.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <optional>

#include "aviary/core/cpu_gemm.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/distributed.h"
#include "aviary/core/error.h"
#include "aviary/core/glob.h"
#include "aviary/core/threads.h"
#include "adamw_fused.h"

namespace aviary {
namespace {

bool contains(const std::string& s, const char* part) {
    return s.find(part) != std::string::npos;
}

// L2Wrap: identity on the loss; backward puts max_logit·1e−4/(B·T) at each
// position's arg-max (official `gy.scatter_(-1, ids, maxx * factor)`), times
// the incoming gradient (1 for a single micro-batch).
struct L2WrapFunction : public torch::autograd::Function<L2WrapFunction> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& loss, const at::Tensor& logits) {
        auto [maxx, ids] = logits.max(-1, /*keepdim=*/true);  // (B, T, 1)
        ctx->save_for_backward({maxx, ids});
        ctx->saved_data["factor"] = 1e-4 / double(logits.numel() / logits.size(-1));  // 1e−4 / (B·T)
        ctx->saved_data["sizes"] = logits.sizes().vec();
        return loss.clone();
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
        auto saved = ctx->get_saved_variables();
        const double factor = ctx->saved_data["factor"].toDouble();
        const auto sizes = ctx->saved_data["sizes"].toIntVector();
        at::Tensor gy = torch::zeros(sizes, saved[0].options());
        gy.scatter_(-1, saved[1], saved[0] * factor * grad_out[0]);
        return {grad_out[0], gy};
    }
};

// Python's `with torch.autocast("cpu", dtype=torch.bfloat16):` (torch/amp/autocast_mode.py, 1.13): matrix
// products (linear, matmul, bmm, conv) take bf16 copies of their inputs, the ops of autocast's fp32 list run in
// fp32, the rest in their inputs' dtype. The bf16 copies of the weights are cached inside the region; the cache is
// cleared when the outermost region ends, so no copy outlives the optimizer step that changes the weights.
class CpuAutocastBf16 {
public:
    CpuAutocastBf16() : enabled_(at::autocast::is_cpu_enabled()), dtype_(at::autocast::get_autocast_cpu_dtype()) {
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::increment_nesting();
    }
    ~CpuAutocastBf16() {
        if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
        at::autocast::set_cpu_enabled(enabled_);
        at::autocast::set_autocast_cpu_dtype(dtype_);
    }
    CpuAutocastBf16(const CpuAutocastBf16&) = delete;
    CpuAutocastBf16& operator=(const CpuAutocastBf16&) = delete;

private:
    bool enabled_;
    at::ScalarType dtype_;
};

// bf16/fp16 tensors widened to fp32 (the loss is computed in fp32 whatever the logits' precision); fp32 and fp64
// pass unchanged.
at::Tensor widen_reduced(const at::Tensor& t) {
    if (!t.defined()) return t;
    const auto st = t.scalar_type();
    return st == at::kBFloat16 || st == at::kHalf ? t.to(at::kFloat) : t;
}
c10::optional<at::Tensor> widen_reduced(const c10::optional<at::Tensor>& t) {
    return t && t->defined() ? c10::optional<at::Tensor>(widen_reduced(*t)) : t;
}

// Layer and group norms in fp32 under the CPU autocast: LibTorch 1.13's CPU lists leave them out, so a norm right
// after a bf16 product (AudioRWKV's patch embedding) would meet fp32 weights with a bf16 input and fail, or
// normalise in bf16. These kernels widen the inputs and run the norm without autocast (fp32 in, fp32 out), as
// CUDA autocast's fp32 list does. Registered for the AutocastCPU key only: outside autocast nothing changes.
at::Tensor layer_norm_fp32(const at::Tensor& input, at::IntArrayRef normalized_shape,
                           const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias, double eps,
                           bool cudnn_enable) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    return at::layer_norm(widen_reduced(input), normalized_shape, widen_reduced(weight), widen_reduced(bias), eps,
                          cudnn_enable);
}
at::Tensor group_norm_fp32(const at::Tensor& input, int64_t groups, const c10::optional<at::Tensor>& weight,
                           const c10::optional<at::Tensor>& bias, double eps, bool cudnn_enabled) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    return at::group_norm(widen_reduced(input), groups, widen_reduced(weight), widen_reduced(bias), eps, cudnn_enabled);
}
TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) {
    m.impl("layer_norm", TORCH_FN(layer_norm_fp32));
    m.impl("group_norm", TORCH_FN(group_norm_fp32));
}

}  // namespace

TrainPrecision parse_train_precision(const std::string& name) {
    if (name == "auto") return TrainPrecision::Auto;
    if (name == "fp32") return TrainPrecision::Fp32;
    if (name == "bf16") return TrainPrecision::Bf16;
    AVIARY_FAIL("unknown training precision '", name, "': expected bf16, fp32 or auto");
}

const char* train_precision_name(TrainPrecision precision) {
    switch (precision) {
        case TrainPrecision::Auto:
            return "auto";
        case TrainPrecision::Fp32:
            return "fp32";
        case TrainPrecision::Bf16:
            return "bf16";
    }
    return "?";
}

bool cpu_has_amx_bf16() {
    return cpu_info().amx_bf16;
}

bool bf16_training_faster() {
    return cpu_has_amx_bf16() || cpu::bf16_gemm_rates().onednn_faster;
}

TrainPrecision resolve_train_precision(TrainPrecision precision, bool parameters_on_cpu) {
    if (precision == TrainPrecision::Auto)
        return parameters_on_cpu && bf16_training_faster() ? TrainPrecision::Bf16 : TrainPrecision::Fp32;
    AVIARY_CHECK(precision != TrainPrecision::Bf16 || parameters_on_cpu,
                 "bf16 training is LibTorch's CPU autocast and the parameters are not on the CPU: train with "
                 "--precision fp32 on this device");
    return precision;
}

ParamGroup classify_parameter(const std::string& name, const at::Tensor& param, double weight_decay) {
    // First match wins (spec §7.4).
    if (contains(name, "_w1") || contains(name, "_w2")) return ParamGroup::Base;  // all LoRAs
    if (contains(name, "time_sta") && weight_decay > 0) return ParamGroup::WeightDecay;
    if (contains(name, "time_mix") || contains(name, "time_maa")) return ParamGroup::Base;
    if (contains(name, "time_decay") || contains(name, "time_daaaa")) return ParamGroup::Decay2x;
    if (contains(name, "time_faaaa")) return ParamGroup::Base;
    if (contains(name, "time_first")) return ParamGroup::First3x;
    if (param.squeeze().dim() >= 2 && weight_decay > 0) return ParamGroup::WeightDecay;
    return ParamGroup::Base;
}

double group_lr_multiplier(ParamGroup g) {
    switch (g) {
        case ParamGroup::Decay2x:
            return 2.0;
        case ParamGroup::First3x:
            return 3.0;
        default:
            return 1.0;
    }
}

const char* group_name(ParamGroup g) {
    switch (g) {
        case ParamGroup::Base:
            return "1x";
        case ParamGroup::Decay2x:
            return "2x";
        case ParamGroup::First3x:
            return "3x";
        case ParamGroup::WeightDecay:
            return "decay";
    }
    return "?";
}

at::Tensor l2wrap(const at::Tensor& loss, const at::Tensor& logits) {
    return L2WrapFunction::apply(loss, logits);
}

at::Tensor lm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& mask, bool use_l2wrap) {
    AVIARY_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                     logits.size(1) == targets.size(1),
                 "lm_loss: logits must be (B, T, V) and targets (B, T)");
    const int64_t V = logits.size(2);
    // per-token cross-entropy (B·T), in fp32 also when the logits are bf16 (bf16 training)
    const at::Tensor lf = widen_reduced(logits);
    at::Tensor ce =
        torch::nn::functional::cross_entropy(lf.reshape({-1, V}), targets.reshape({-1}).to(logits.device(), at::kLong),
                                             torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    at::Tensor loss;
    if (mask.defined()) {
        at::Tensor m = mask.reshape({-1}).to(ce.device(), at::kFloat);
        loss = (ce * m).sum() / m.sum().clamp_min(1.0);  // mean over unmasked positions
    } else {
        loss = ce.mean();
    }
    return use_l2wrap ? l2wrap(loss, lf) : loss;
}

struct Trainer::Impl {
    TrainOptions options;
    TensorList trainable;
    std::vector<ParamGroup> groups_of;    // per trainable
    std::vector<ParamGroup> group_kinds;  // per optimizer group
    std::unique_ptr<torch::optim::AdamW> optimizer;
    int64_t steps_done = 0;
    std::shared_ptr<Communicator> comm;  // null: one process
};

Trainer::Trainer(const TensorList& params, const TrainOptions& opt) : impl_(std::make_unique<Impl>()) {
    AVIARY_CHECK(opt.steps >= 1, "steps must be >= 1, got ", opt.steps);
    AVIARY_CHECK(opt.batch >= 1 && opt.grad_accum >= 1, "batch and grad_accum must be >= 1");
    AVIARY_CHECK(opt.lr > 0 && opt.lr_final >= 0, "lr must be > 0 and lr_final >= 0");
    AVIARY_CHECK(opt.warmup >= 0 && opt.grad_clip >= 0 && opt.weight_decay >= 0,
                 "warmup, grad_clip and weight_decay must be >= 0");
    impl_->options = opt;
    for (const auto& pattern : opt.freeze) {
        bool any = false;
        for (const auto& nt : params) any = any || glob_match(pattern, nt.name);
        AVIARY_CHECK(any, "--freeze '", pattern, "' matches no parameter (names look like blocks.0.att.key.weight)");
    }
    for (const auto& pattern : opt.train_only) {
        bool any = false;
        for (const auto& nt : params) any = any || glob_match(pattern, nt.name);
        AVIARY_CHECK(any, "train-only pattern '", pattern,
                     "' matches no parameter (names look like "
                     "blocks.0.att.key.weight)");
    }
    const ParamGroup order[] = {ParamGroup::Base, ParamGroup::Decay2x, ParamGroup::First3x, ParamGroup::WeightDecay};
    std::vector<std::vector<at::Tensor>> buckets(4);
    for (const auto& nt : params) {
        bool frozen = false;
        for (const auto& pattern : opt.freeze) frozen = frozen || glob_match(pattern, nt.name);
        if (!opt.train_only.empty()) {
            bool listed = false;
            for (const auto& pattern : opt.train_only) listed = listed || glob_match(pattern, nt.name);
            frozen = frozen || !listed;
        }
        at::Tensor p = nt.tensor;
        if (frozen || !p.is_floating_point()) {
            p.set_requires_grad(false);
            continue;
        }
        p.set_requires_grad(true);
        const ParamGroup g = classify_parameter(nt.name, p, opt.weight_decay);
        impl_->trainable.push_back(nt);
        impl_->groups_of.push_back(g);
        buckets[static_cast<size_t>(g)].push_back(p);
    }
    AVIARY_CHECK(!impl_->trainable.empty(), "nothing to train: every parameter is frozen");
    impl_->options.precision = resolve_train_precision(opt.precision, impl_->trainable[0].tensor.device().is_cpu());
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (ParamGroup g : order) {
        auto& ps = buckets[static_cast<size_t>(g)];
        if (ps.empty()) continue;
        auto o = std::make_unique<torch::optim::AdamWOptions>(opt.lr * group_lr_multiplier(g));
        o->betas({opt.beta1, opt.beta2}).eps(opt.adam_eps);
        o->weight_decay(g == ParamGroup::WeightDecay ? opt.weight_decay : 0.0);  // AdamW's default is 1e-2: override
        groups.emplace_back(ps, std::move(o));
        impl_->group_kinds.push_back(g);
    }
    torch::optim::AdamWOptions defaults(opt.lr);
    defaults.betas({opt.beta1, opt.beta2}).eps(opt.adam_eps).weight_decay(0.0);
    impl_->optimizer = std::make_unique<torch::optim::AdamW>(groups, defaults);
}

Trainer::~Trainer() = default;

StepResult Trainer::step(const std::function<at::Tensor(int64_t)>& micro_loss) {
    auto& o = impl_->options;
    auto& optim = *impl_->optimizer;
    const bool bf16 = o.precision == TrainPrecision::Bf16;
    // bf16: the products go to oneDNN, which runs on LibTorch's intra-op pool, so the whole step (forward,
    // backward, optimizer) gets every thread there. fp32: the products go to OpenBLAS's pool and LibTorch's ops keep
    // one thread; the WKV and the fused ops get every thread beside it where both pools' idle workers sleep
    // (threads.h), else one.
    std::optional<TorchThreadsScope> all_threads;
    std::optional<SharesBesideBlasScope> beside_blas;
    if (bf16)
        all_threads.emplace();
    else if (thread_pools_sleep_when_idle())
        beside_blas.emplace();
    optim.zero_grad();
    double sum = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
        at::Tensor loss;
        {
            std::optional<CpuAutocastBf16> autocast;  // forward and loss only; backward follows the forward's dtypes
            if (bf16) autocast.emplace();
            loss = widen_reduced(micro_loss(micro));
        }
        AVIARY_CHECK(loss.defined() && loss.numel() == 1, "the loss of a micro-batch must be a scalar");
        const double value = loss.item<double>();
        AVIARY_CHECK(std::isfinite(value), "the loss became ", value, " at step ", impl_->steps_done + 1,
                     " (try a lower --lr)");
        sum += value;
        (loss / double(o.grad_accum)).backward();
    }
    std::vector<at::Tensor> params;
    for (const auto& nt : impl_->trainable) params.push_back(nt.tensor);
    StepResult r;
    r.loss = sum / double(o.grad_accum);
    if (impl_->comm && impl_->comm->world_size() > 1) {
        // Data parallelism: mean of the ranks' gradients = the gradient of the
        // mean loss over the global batch (equal shards); the loss travels along.
        std::vector<at::Tensor> bufs;
        for (auto& p : params) {
            if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
            bufs.push_back(p.grad());
        }
        at::Tensor loss_buf = torch::full({1}, r.loss, params[0].options());
        bufs.push_back(loss_buf);
        impl_->comm->all_reduce_sum(bufs);
        const double world = double(impl_->comm->world_size());
        for (auto& p : params) p.grad().div_(world);
        r.loss = loss_buf.item<double>() / world;
    }
    if (o.grad_clip > 0) {
        r.grad_norm = torch::nn::utils::clip_grad_norm_(params, o.grad_clip);
    } else {
        double sq = 0;
        for (auto& p : params)
            if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
        r.grad_norm = std::sqrt(sq);
    }
    r.lr = learning_rate(o, impl_->steps_done);
    for (size_t i = 0; i < optim.param_groups().size(); ++i) {
        auto& go = static_cast<torch::optim::AdamWOptions&>(optim.param_groups()[i].options());
        go.lr(r.lr * group_lr_multiplier(impl_->group_kinds[i]));
    }
    {
        torch::NoGradGuard no_grad;
        if (!adamw_step_fused(optim)) optim.step();  // CUDA: LibTorch's
    }
    impl_->steps_done += 1;
    return r;
}

int64_t Trainer::step_count() const {
    return impl_->steps_done;
}
void Trainer::set_communicator(std::shared_ptr<Communicator> comm) {
    impl_->comm = std::move(comm);
}
const TensorList& Trainer::trainable() const {
    return impl_->trainable;
}
const TrainOptions& Trainer::options() const {
    return impl_->options;
}

ParamGroup Trainer::group_of(const std::string& name) const {
    for (size_t i = 0; i < impl_->trainable.size(); ++i)
        if (impl_->trainable[i].name == name) return impl_->groups_of[i];
    AVIARY_FAIL("'", name, "' is not a trained parameter");
}

TensorList Trainer::optimizer_state() const {
    TensorList out;
    auto& state = impl_->optimizer->state();
    for (const auto& nt : impl_->trainable) {
        auto it = state.find(optimizer_state_key(nt.tensor));
        if (it == state.end()) continue;  // no step taken yet
        const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        out.push_back({nt.name + "/exp_avg", s.exp_avg().detach()});
        out.push_back({nt.name + "/exp_avg_sq", s.exp_avg_sq().detach()});
        out.push_back({nt.name + "/step", torch::full({1}, s.step(), torch::kLong)});
    }
    return out;
}

void Trainer::load_optimizer_state(const TensorList& state, int64_t step_count) {
    auto& map = impl_->optimizer->state();
    map.clear();
    for (const auto& nt : impl_->trainable) {
        const at::Tensor* m = find_tensor(state, nt.name + "/exp_avg");
        const at::Tensor* v = find_tensor(state, nt.name + "/exp_avg_sq");
        const at::Tensor* s = find_tensor(state, nt.name + "/step");
        if (!m && !v && !s) continue;
        AVIARY_CHECK(m && v && s, "optimizer state of '", nt.name, "' is incomplete");
        AVIARY_CHECK(s->numel() == 1, "optimizer state of '", nt.name, "': '", nt.name,
                     "/step' should hold one value, ", "it has ", s->numel());
        AVIARY_CHECK(m->sizes() == nt.tensor.sizes() && v->sizes() == nt.tensor.sizes(), "optimizer state of '",
                     nt.name, "' has shape ", m->sizes(), ", the parameter has ", nt.tensor.sizes());
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(s->to(torch::kLong).item<int64_t>());
        st->exp_avg(m->to(nt.tensor.options()).clone());
        st->exp_avg_sq(v->to(nt.tensor.options()).clone());
        map[optimizer_state_key(nt.tensor)] = std::move(st);
    }
    impl_->steps_done = step_count;
}

}  // namespace aviary
