// The fused CPU WKV loops of wkv_cpu.cpp, one (sequence, head) per call, built once per instruction set from one body
// (wkv_cpu_body.inc): "scalar" (1 lane, any head size), "baseline" (4 lanes, baseline x86-64), "avx2" (8 lanes, FMA)
// and "avx512" (16 lanes). A version runs head sizes that are a multiple of its lanes. Raw fp32 pointers only: no
// LibTorch here, so the per-ISA files compile fast. Private to core/src.
#pragma once
#include <cstdint>

namespace aviary::wkv_loops {

constexpr int64_t kCheckpoint = 16;  // tokens between the states the forward pass keeps for the backward pass

struct Dims {
    int64_t B, T, H, N;
    int64_t spans() const { return (T + kCheckpoint - 1) / kCheckpoint; }
    int64_t row(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * N; }  // (b, t, h, :)
};

// One call's inputs: r, k, v (B, T, H, N) contiguous; w the decay itself (exp of log_w, in (0, 1]) with row (b, t, h)
// at w + b·w_sb + t·w_st + h·N (strides 0 where it is broadcast over B or T, as RWKV-5's is); u (H, N).
struct Inputs {
    Dims d;
    const float *r, *k, *v, *w, *u;
    int64_t w_sb, w_st;
    const float* w_row(int64_t b, int64_t t, int64_t h) const { return w + b * w_sb + t * w_st + h * d.N; }
};

// Forward of head bh = b·H + h: y (B, T, H, N); s0 / s_out (B, H, N, N) the initial (null = zeros) and final states;
// ckpt (B, H, spans, N, N) the state before every kCheckpoint-th token, transposed (Sᵀ[i][j], as the backward pass
// works), or null when no backward pass follows.
using ForwardFn = void (*)(const Inputs& in, int64_t bh, const float* s0, float* y, float* s_out, float* ckpt);

// Backward of head bh, from the forward's checkpoints: gy (B, T, H, N) and gs_out (B, H, N, N, null = no gradient into
// the final state) in; gr, gk, gv, glw (B, T, H, N; glw is ∂L/∂log_w, not ∂L/∂w), gu (B, H, N) and gs0 (B, H, N, N,
// null = not wanted) out. scratch holds scratch_floats(N) floats, one buffer per thread.
struct Grads {
    const float *gy, *gs_out;
    float *gr, *gk, *gv, *glw, *gu, *gs0;
};
using BackwardFn = void (*)(const Inputs& in, int64_t bh, const float* ckpt, const Grads& g, float* scratch);
constexpr int kMaxLanes = 16;
inline int64_t scratch_floats(int64_t N) {
    return (kCheckpoint + 1) * N * N + kMaxLanes * N;
}

struct Version {
    const char* name;
    int lanes;  // the head size must be a multiple of this
    ForwardFn forward;
    BackwardFn backward;
};

const Version& version_scalar();
const Version& version_baseline();
// Null where the library was built without that instruction set; the caller checks that the CPU has it.
const Version* version_avx2();
const Version* version_avx512();

}  // namespace aviary::wkv_loops
