// The CPU engine's prefill (cpu_engine.h): a prompt in sequence mode, in blocks of tokens whose matrices run as GEMMs
// (oneDNN on the matrix units, or single-threaded BLAS blocks) on the engine's pool, the element-wise parts fused, the
// WKV token by token per head; and the measurement of its GEMM rate.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/cpu_gemm.h"
#include "cpu_engine_impl.h"

namespace aviary {

namespace {

// The library is built for baseline x86-64; the GEMM blocks' element-wise epilogue (scales, exp_approx, sigmoid, the
// residual adds) is also compiled for AVX2 and AVX-512 (AVIARY_SIMD_CLONES, vec_math.h). This file is built with
// -ffp-contract=off, so no version fuses a multiply-add the others round twice: every version gives the same bits.

// One output row of a GEMM block: y[i] = post(v_i, j0 + i, r0 + i) for i < n, with v_i = (b[i]·xs)·ws[i] (int8: the
// activation and weight-row scales) or b[i] when ws is null; y may be b.
template <class Post>
AVIARY_SIMD_CLONES void epilogue_row(const float* b, float xs, const float* ws, int64_t n, float* y, int64_t j0,
                                     int64_t r0, Post& post) {
    if (ws)
        for (int64_t i = 0; i < n; ++i) y[i] = post((b[i] * xs) * ws[i], j0 + i, r0 + i);
    else
        for (int64_t i = 0; i < n; ++i) y[i] = post(b[i], j0 + i, r0 + i);
}

}  // namespace

void CpuEngine::Impl::choose_gemm_path(const std::string& option) {
    const std::string path = prefill_gemm_path(dtype, option);
    gemm_path = path == "onednn" ? GemmPath::kOneDnn : path == "libtorch" ? GemmPath::kLibTorch : GemmPath::kBlas;
    if (gemm_path == GemmPath::kLibTorch) sgemm = nullptr;
}

std::string CpuEngine::Impl::gemm_name() const {
    if (gemm_path == GemmPath::kOneDnn && dtype != "fp32") return "onednn-" + dtype;
    return sgemm ? "blas" : "libtorch";
}

void CpuEngine::Impl::prefill_resize(int64_t T) {
    if (T <= prefill_rows) return;
    prefill_rows = T;
    size_rows(T, {&px, &pa, &pd, &pm0, &pxw, &pxk, &pxv, &pxr, &pxg, &ptmp, &pffr}, {&pr, &pk, &pv, &pg, &pdec, &po},
              ph5, nullptr, pdh, pffk);  // the prefill mixes in the GEMM epilogue: no deltas kept
}

template <class Fn>
void CpuEngine::Impl::for_rows(int64_t T, Fn&& fn) {
    const int n = chunk_count(T, 4);
    pool->run(n, [&](int c) { fn(T * c / n, T * (c + 1) / n); });
}

void CpuEngine::Impl::widen_row(const MatView& w, int64_t r, float* out) {
    const int64_t cols = w.cols;
    if (w.type == WeightType::BF16) {
        const uint16_t* in = static_cast<const uint16_t*>(w.data) + r * cols;
        for (int64_t c = 0; c < cols; ++c) {
            const uint32_t bits = uint32_t(in[c]) << 16;
            std::memcpy(out + c, &bits, sizeof(float));
        }
    } else {
        const int8_t* in = static_cast<const int8_t*>(w.data) + r * cols;
        const float sc = w.scale[r];
        for (int64_t c = 0; c < cols; ++c) out[c] = float(in[c]) * sc;
    }
}

const float* CpuEngine::Impl::widen_rows(const MatView& w, int64_t r0, int64_t r1) {
    const int64_t cols = w.cols;
    if (w.type == WeightType::F32) return static_cast<const float*>(w.data) + r0 * cols;
    thread_local std::vector<float> scratch;
    if (scratch.size() < size_t((r1 - r0) * cols)) scratch.resize(size_t((r1 - r0) * cols));
    for (int64_t r = r0; r < r1; ++r) widen_row(w, r, scratch.data() + (r - r0) * cols);
    return scratch.data();
}

CpuEngine::Impl::XFormat CpuEngine::Impl::x_format(const MatView& w) const {
    // On the oneDNN path: fp32 products (the LoRAs, whatever their storage) take X as it is, bf16 and int8 ones take X
    // rounded to bf16 or int8 codes per row. The BLAS paths take fp32.
    const bool exact = w.type == WeightType::F32 || w.fp32_activations;
    if (exact || gemm_path != GemmPath::kOneDnn) return XFormat::kF32;
    return w.type == WeightType::BF16 ? XFormat::kBF16 : XFormat::kI8;
}

void CpuEngine::Impl::PreparedX::reset(XFormat f, int64_t T, int64_t cols) {
    format = f;
    if (f == XFormat::kBF16 && bf16.size() < size_t(T * cols)) bf16.resize(size_t(T * cols));
    if (f == XFormat::kI8 && q.size() < size_t(T * cols)) q.resize(size_t(T * cols));
    if (f == XFormat::kI8 && scale.size() < size_t(T)) scale.resize(size_t(T));
}

void CpuEngine::Impl::PreparedX::put(int64_t t, const float* row, int64_t cols) {
    if (format == XFormat::kBF16)
        cpu::round_to_bf16(row, cols, &bf16[size_t(t * cols)]);
    else if (format == XFormat::kI8)
        cpu::quantize_rows_int8(row, 1, cols, &q[size_t(t * cols)], &scale[size_t(t)]);
}

template <class Post>
void CpuEngine::Impl::gemm(const MatView& w, const float* X, int64_t T, int64_t x_stride, float* Y, Post&& post,
                           const PreparedX* prepared) {
    const int64_t rows = w.rows, cols = w.cols;
    const XFormat format = x_format(w);
    const bool exact = w.type == WeightType::F32 || w.fp32_activations;
    const bool dnn = gemm_path == GemmPath::kOneDnn && (!exact || f32_on_onednn);
    AVIARY_CHECK(!prepared || prepared->format == format, "internal: a GEMM's prepared input is in the wrong format");
    const bool have = prepared && format != XFormat::kF32;
    // A small matrix (the LoRAs) stored in bf16 is widened once per product, in parallel, rather than by each block
    // (the blocks of a matrix split by tokens each need all of it).
    const float* wide = nullptr;
    if (w.fp32_activations && w.type != WeightType::F32) {
        if (gemm_wide.size() < size_t(rows * cols)) gemm_wide.resize(size_t(rows * cols));
        for_rows(rows, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) widen_row(w, r, &gemm_wide[r * cols]);
        });
        wide = gemm_wide.data();
    }
    auto f32_rows = [&](int64_t r0, int64_t r1) { return wide ? wide + r0 * cols : widen_rows(w, r0, r1); };
    const uint16_t* xb = have ? prepared->bf16.data() : gemm_xb.data();
    const int8_t* xq = have ? prepared->q.data() : gemm_xq.data();
    const float* xsc = have ? prepared->scale.data() : gemm_xs.data();
    if (format == XFormat::kBF16 && !have) {
        if (gemm_xb.size() < size_t(T * cols)) gemm_xb.resize(size_t(T * cols));
        xb = gemm_xb.data();
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) cpu::round_to_bf16(X + t * x_stride, cols, &gemm_xb[t * cols]);
        });
    } else if (format == XFormat::kI8 && !have) {
        if (gemm_xq.size() < size_t(T * cols)) gemm_xq.resize(size_t(T * cols));
        if (gemm_xs.size() < size_t(T)) gemm_xs.resize(size_t(T));
        xq = gemm_xq.data();
        xsc = gemm_xs.data();
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t)
                cpu::quantize_rows_int8(X + t * x_stride, 1, cols, &gemm_xq[t * cols], &gemm_xs[t]);
        });
    }
    // Blocks of W's rows, each over all T rows of X; a W too short to give every thread blocks of 64 rows (the LoRAs'
    // first halves: 32–160 rows) is shared by all its blocks instead, which then take the rows of X in turn.
    const int threads = pool->size();
    const bool by_tokens = threads > 1 && rows < 64 * threads && T >= 16 * threads;
    const int n = by_tokens ? std::min(chunk_count(T, 16), threads * gemm_blocks_per_thread)
                            : std::min(chunk_count(rows, 64), threads * gemm_blocks_per_thread);
    pool->run(n, [&](int c) {
        auto bound = [&](int i) { return i == n ? rows : (rows * i / n) / 16 * 16; };
        const int64_t r0 = by_tokens ? 0 : bound(c), r1 = by_tokens ? rows : bound(c + 1);
        const int64_t t0 = by_tokens ? T * c / n : 0, t1 = by_tokens ? T * (c + 1) / n : T;
        if (r0 >= r1 || t0 >= t1) return;
        const int64_t nb = r1 - r0, m = t1 - t0;
        if (dnn) {
            // dense block in the thread's scratch (oneDNN's AMX kernels need ldy == N), then scaled (int8) and
            // passed through `post` into Y in one pass
            thread_local std::vector<float> block;
            if (block.size() < size_t(m * nb)) block.resize(size_t(m * nb));
            const bool bf16 = exact || w.type == WeightType::BF16;  // no scales to apply
            if (exact)
                cpu::gemm_f32_onednn(X + t0 * x_stride, m, cols, x_stride, f32_rows(r0, r1), nb, block.data(), nb);
            else if (bf16)
                cpu::gemm_bf16_onednn(xb + t0 * cols, m, cols, cols, static_cast<const uint16_t*>(w.data) + r0 * cols,
                                      nb, block.data(), nb);
            else
                cpu::gemm_int8_onednn(xq + t0 * cols, m, cols, cols, static_cast<const int8_t*>(w.data) + r0 * cols, nb,
                                      block.data(), nb);
            const float* ws = bf16 ? nullptr : w.scale + r0;
            for (int64_t t = t0; t < t1; ++t) {
                const float* b = block.data() + (t - t0) * nb;
                float* y = Y + t * rows + r0;
                const int64_t j0 = t * rows + r0;
                const float xs = bf16 ? 1.0f : xsc[t];
                if constexpr (std::is_same_v<std::decay_t<Post>, NoEpilogue>) {
                    auto scaled = [](float v, int64_t, int64_t) { return v; };
                    if (bf16)
                        std::copy_n(b, nb, y);
                    else
                        epilogue_row(b, xs, ws, nb, y, j0, r0, scaled);
                } else {
                    epilogue_row(b, xs, ws, nb, y, j0, r0, post);
                }
            }
            return;
        }
        {
            const float* W = f32_rows(r0, r1);
            if (sgemm) {
                sgemm(true, int(m), int(nb), int(cols), X + t0 * x_stride, int(x_stride), W, int(cols),
                      Y + t0 * rows + r0, int(rows));
            } else {
                const at::Tensor xt =
                    at::from_blob(const_cast<float*>(X + t0 * x_stride), {m, cols}, {x_stride, 1}, at::kFloat);
                const at::Tensor wt = at::from_blob(const_cast<float*>(W), {nb, cols}, at::kFloat);
                at::Tensor yt = at::from_blob(Y + t0 * rows + r0, {m, nb}, {rows, 1}, at::kFloat);  // a block
                at::mm_out(yt, xt, wt.t());
            }
        }
        if constexpr (!std::is_same_v<std::decay_t<Post>, NoEpilogue>) {
            for (int64_t t = t0; t < t1; ++t) {
                float* y = Y + t * rows + r0;
                epilogue_row(y, 1.0f, nullptr, nb, y, t * rows + r0, r0, post);
            }
        }
    });
}

template <class Post, class Sink>
void CpuEngine::Impl::prefill_short_k(int count, const float* H, int64_t T, int64_t h_stride, const float* W, int64_t K,
                                      int64_t N, float* const* Y, Post&& post, Sink&& sink) {
    constexpr int64_t kRows = cpu::kShortKTileRows, kCols = cpu::kShortKTileCols;
    for_rows(T, [&](int64_t t0, int64_t t1) {
        thread_local std::vector<float> rows;  // kRows whole output rows, in L1
        if (rows.size() < size_t(kRows * N)) rows.resize(size_t(kRows * N));
        for (int64_t t = t0; t < t1; t += kRows) {
            const int64_t m = std::min(kRows, t1 - t);
            for (int c = 0; c < count; ++c) {
                const float* Wc = W + c * K * N;
                for (int64_t n0 = 0; n0 < N; n0 += kCols) {
                    const int64_t nb = std::min(kCols, N - n0);
                    short_k_tile(H + t * h_stride + c * K, h_stride, m, Wc + n0, K, N, nb, &rows[size_t(n0)], N);
                }
                auto post_c = [&](float v, int64_t j, int64_t i) { return post(c, v, j, i); };
                for (int64_t r = 0; r < m; ++r) {
                    const int64_t j0 = (t + r) * N;
                    float* row = &rows[size_t(r * N)];
                    epilogue_row(row, 1.0f, nullptr, N, Y[c] ? Y[c] + j0 : row, j0, 0, post_c);
                    if (!Y[c]) sink(c, t + r, static_cast<const float*>(row));
                }
            }
        }
    });
}

void CpuEngine::Impl::prefill_layer(const Layer& L, int64_t T, float* att_prev, float* ffn_prev, float* S) {
    const int64_t D = cfg.n_embd, A = cfg.n_att, F = cfg.ffn_dim, Lm = cfg.mix_lora_rank, Ld = cfg.decay_lora_rank,
                  H = cfg.n_head, N = cfg.head_size;
    // a = LN1(x); d_t = a_{t−1} − a_t (a_{−1} from the state)
    for_rows(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            layer_norm(px.data() + t * D, L.ln1_w.data(), L.ln1_b.data(), D, pa.data() + t * D);
    });
    for_rows(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const float *cur = pa.data() + t * D, *prev = t == 0 ? att_prev : cur - D;
            float* dt = pd.data() + t * D;
            for (int64_t i = 0; i < D; ++i) dt[i] = prev[i] - cur[i];
        }
    });
    std::copy_n(pa.data() + (T - 1) * D, D, att_prev);
    // Row t of a GEMM input (D values: value(i, j), j = t·D + i) into its fp32 buffer x, or, where its GEMM reads bf16
    // or int8 codes, converted into prep[p] (the fp32 row only in the thread's scratch).
    auto put_row = [&](int p, int64_t t, float* x, auto&& value) {
        if (prep[p].format == XFormat::kF32) {
            for (int64_t i = 0, j = t * D; i < D; ++i, ++j) x[j] = value(i, j);
            return;
        }
        thread_local std::vector<float> row;
        if (row.size() < size_t(D)) row.resize(size_t(D));
        for (int64_t i = 0, j = t * D; i < D; ++i, ++j) row[size_t(i)] = value(i, j);
        prep[p].put(t, row.data(), D);
    };
    prep[0].reset(x_format(L.att_k), T, D);
    prep[1].reset(x_format(L.att_v), T, D);
    prep[2].reset(x_format(L.att_r), T, D);
    prep[3].reset(x_format(L.att_g), T, D);
    const float* dec = L.decay.data();  // v5: static per channel
    int64_t dec_stride = 0;
    if (cfg.version == 6) {
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t)
                for (int64_t i = 0, j = t * D; i < D; ++i, ++j) pm0[j] = pa[j] + pd[j] * L.m_x[i];
        });
        gemm(L.maa_w1t, pm0.data(), T, D, ph5.data(), [](float y, int64_t, int64_t) { return cpu::tanh_approx(y); });
        // x_c = a + d·(m_c + h_c·W2_c), the mix in the products' epilogue; x_k, x_v, x_r, x_g straight into their
        // GEMM's input format where that is not fp32 (x_w feeds the decay LoRA: fp32)
        const float* mix[5] = {L.m_w.data(), L.m_k.data(), L.m_v.data(), L.m_r.data(), L.m_g.data()};
        float* xs[5] = {pxw.data(), pxk.data(), pxv.data(), pxr.data(), pxg.data()};
        for (int c = 1; c < 5; ++c)
            if (prep[c - 1].format != XFormat::kF32) xs[c] = nullptr;
        prefill_short_k(
            5, ph5.data(), T, 5 * Lm, L.maa_w2, Lm, D, xs,
            [&](int c, float y, int64_t j, int64_t i) { return pa[j] + pd[j] * (mix[c][i] + y); },
            [&](int c, int64_t t, const float* row) { prep[c - 1].put(t, row, D); });
        gemm(L.decay_w1t, pxw.data(), T, D, pdh.data(), [](float y, int64_t, int64_t) { return cpu::tanh_approx(y); });
        float* dec_out[1] = {pdec.data()};
        prefill_short_k(
            1, pdh.data(), T, Ld, L.decay_w2, Ld, A, dec_out,
            [&](int, float y, int64_t, int64_t i) { return exp_approx(-exp_approx(L.decay[i] + y)); },
            [](int, int64_t, const float*) {});
        dec = pdec.data();
        dec_stride = A;
    } else {
        const float* mix[4] = {L.m_k.data(), L.m_v.data(), L.m_r.data(), L.m_g.data()};
        float* xs[4] = {pxk.data(), pxv.data(), pxr.data(), pxg.data()};
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t)
                for (int c = 0; c < 4; ++c)
                    put_row(c, t, xs[c], [&](int64_t i, int64_t j) { return pa[j] + pd[j] * mix[c][i]; });
        });
    }
    gemm(L.att_r, pxr.data(), T, D, pr.data(), NoEpilogue{}, &prep[2]);
    gemm(L.att_k, pxk.data(), T, D, pk.data(), NoEpilogue{}, &prep[0]);
    gemm(L.att_v, pxv.data(), T, D, pv.data(), NoEpilogue{}, &prep[1]);
    gemm(
        L.att_g, pxg.data(), T, D, pg.data(), [](float y, int64_t, int64_t) { return y * sigmoid(y); }, &prep[3]);
    // WKV token by token, heads in parallel; then GroupNorm and the gate
    const int n = chunk_count(H, 1);
    pool->run(n, [&](int c) {
        for (int64_t h = H * c / n; h < H * (c + 1) / n; ++h)
            for (int64_t t = 0; t < T; ++t) {
                const int64_t off = t * A + h * N;
                float* y = po.data() + off;
                head_step(N, pr.data() + off, pk.data() + off, pv.data() + off, L.u.data() + h * N,
                          dec + t * dec_stride + h * N, S + h * N * N, y, L.lnx_w.data() + h * N,
                          L.lnx_b.data() + h * N, pg.data() + off);
            }
    });
    gemm(L.att_o, po.data(), T, A, ptmp.data(), [&](float y, int64_t j, int64_t) { return px[j] += y; });
    // channel mix: b = LN2(x); x_k, x_r from b and b_{t−1}
    for_rows(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            layer_norm(px.data() + t * D, L.ln2_w.data(), L.ln2_b.data(), D, pa.data() + t * D);
    });
    prep[0].reset(x_format(L.ffn_k), T, D);
    prep[2].reset(x_format(L.ffn_r), T, D);
    for_rows(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const float *cur = pa.data() + t * D, *prev = t == 0 ? ffn_prev : cur - D;
            put_row(0, t, pxk.data(), [&](int64_t i, int64_t) { return cur[i] + (prev[i] - cur[i]) * L.ffn_m_k[i]; });
            put_row(2, t, pxr.data(), [&](int64_t i, int64_t) { return cur[i] + (prev[i] - cur[i]) * L.ffn_m_r[i]; });
        }
    });
    std::copy_n(pa.data() + (T - 1) * D, D, ffn_prev);
    gemm(
        L.ffn_k, pxk.data(), T, D, pffk.data(),
        [](float y, int64_t, int64_t) {
            const float p = std::max(y, 0.0f);  // branch-free: a branch on random signs mispredicts half the time
            return p * p;
        },
        &prep[0]);
    gemm(
        L.ffn_r, pxr.data(), T, D, pffr.data(), [](float y, int64_t, int64_t) { return sigmoid(y); }, &prep[2]);
    gemm(L.ffn_v, pffk.data(), T, F, ptmp.data(), [&](float y, int64_t j, int64_t) { return px[j] += pffr[j] * y; });
}

template <class Fill>
void CpuEngine::Impl::prefill_sequence(int64_t T, int64_t b, State& state, float* logits, int64_t flip_begin,
                                       int64_t flip_count, Fill&& fill) {
    const BlasSingleThreadScope blas_one_thread;  // the pool's threads run the GEMM blocks (gemm())
    const int64_t D = cfg.n_embd, H = cfg.n_head, N = cfg.head_size;
    const bool flip = flip_begin >= 0 && flip_count > 1;
    const int64_t chunk = flip ? std::max<int64_t>(prefill_chunk, T) : std::max<int64_t>(1, prefill_chunk);
    prefill_resize(std::min(T, chunk));
    resize(1);
    auto flip_rows = [&] {
        for (int64_t i = 0; i < flip_count / 2; ++i)
            std::swap_ranges(px.data() + (flip_begin + i) * D, px.data() + (flip_begin + i + 1) * D,
                             px.data() + (flip_begin + flip_count - 1 - i) * D);
    };
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t n = std::min(chunk, T - t0);
        for_rows(n, [&](int64_t r0, int64_t r1) {
            std::vector<float> row(static_cast<size_t>(D), 0.0f);
            for (int64_t t = r0; t < r1; ++t) {
                fill(t0 + t, row.data());
                layer_norm(row.data(), ln0_w.data(), ln0_b.data(), D, px.data() + t * D);
            }
        });
        for (int l = 0; l < cfg.n_layer; ++l) {
            const bool flip_here = flip && l % 2 == 1;
            if (flip_here) flip_rows();
            prefill_layer(layers[size_t(l)], n, state.att_shift[l].data_ptr<float>() + b * D,
                          state.ffn_shift[l].data_ptr<float>() + b * D, state.wkv[l].data_ptr<float>() + b * H * N * N);
            if (flip_here) flip_rows();
        }
        if (t0 + n == T) {
            layer_norm(px.data() + (n - 1) * D, ln_out_w.data(), ln_out_b.data(), D, a.data());
            run({{&head, a.data(), D, logits, cfg.vocab_size}});
        }
    }
}

void CpuEngine::Impl::prefill(const int64_t* tokens, int64_t B, int64_t T, State& state, float* logits) {
    AVIARY_CHECK(B >= 1 && T >= 1, "CpuEngine::prefill: needs at least one token per sequence, got shape (", B, ", ", T,
                 ")");
    for (int64_t i = 0; i < B * T; ++i)
        AVIARY_CHECK(tokens[i] >= 0 && tokens[i] < cfg.vocab_size, "token id ", tokens[i],
                     " is out of range (vocabulary size ", cfg.vocab_size, ")");
    prepare_state(state, B);
    for (int64_t b = 0; b < B; ++b)
        prefill_sequence(T, b, state, logits + b * cfg.vocab_size, -1, 0,
                         [&](int64_t t, float* row) { embedding_row(tokens[b * T + t], row); });
}

double CpuEngine::Impl::measure_gemm_gflops() {
    const MatView& w = layers.front().ffn_k;
    const int64_t T = prefill_chunk;
    prefill_resize(T);
    for (int64_t i = 0; i < T * w.cols; ++i) pxk[i] = std::sin(0.37f * float(i % 1013));
    const BlasSingleThreadScope blas_one_thread;
    double best = 1e30;
    for (int rep = 0; rep < 16; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        gemm(w, pxk.data(), T, w.cols, pffk.data());
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (rep > 0) best = std::min(best, t);
    }
    return 2.0 * T * w.rows * w.cols / best / 1e9;
}

std::pair<std::string, double> CpuEngine::Impl::measure_fastest_gemm() {
    const GemmPath own = gemm_path;
    const SgemmRowMajorFn own_sgemm = sgemm;
    std::pair<std::string, double> best{gemm_name(), measure_gemm_gflops()};
    const cpu::OneDnnInfo& dnn = cpu::onednn_info();
    std::vector<GemmPath> others;
    if (own != GemmPath::kBlas && blas_sgemm_row_major()) others.push_back(GemmPath::kBlas);
    if (own != GemmPath::kOneDnn &&
        ((dtype == "bf16" && dnn.bf16_supported) || (dtype == "int8" && dnn.int8_supported)))
        others.push_back(GemmPath::kOneDnn);
    try {
        for (GemmPath p : others) {
            gemm_path = p;
            sgemm = blas_sgemm_row_major();
            const double g = measure_gemm_gflops();
            if (g > best.second) best = {gemm_name(), g};
        }
    } catch (...) {
        gemm_path = own;
        sgemm = own_sgemm;
        throw;
    }
    gemm_path = own;
    sgemm = own_sgemm;
    return best;
}

at::Tensor CpuEngine::prefill_embeddings(const at::Tensor& x, State& state, int64_t flip_begin, int64_t flip_count) {
    const ModelConfig& c = impl_->cfg;
    AVIARY_CHECK(x.dim() == 3 && x.size(0) == 1 && x.size(1) >= 1 && x.size(2) == c.n_embd,
                 "CpuEngine::prefill_embeddings takes rows of shape (1, T, ", c.n_embd, "), got ", x.sizes());
    const int64_t T = x.size(1);
    AVIARY_CHECK(flip_begin < 0 || flip_count <= 1 || flip_begin + flip_count <= T, "flipped rows [", flip_begin, ", ",
                 flip_begin + flip_count, ") lie outside the ", T, " input rows");
    const at::Tensor rows = x.detach().to(at::kCPU, at::kFloat).contiguous();
    const float* px = rows.data_ptr<float>();
    at::Tensor logits = at::empty({1, c.vocab_size}, at::kFloat);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->prepare_state(state, 1);
    impl_->prefill_sequence(T, 0, state, logits.data_ptr<float>(), flip_begin, flip_count,
                            [&](int64_t t, float* row) { std::copy_n(px + t * c.n_embd, c.n_embd, row); });
    return logits;
}

at::Tensor CpuEngine::prefill(const at::Tensor& tokens, State& state) {
    AVIARY_CHECK(tokens.dim() == 2, "CpuEngine::prefill takes tokens of shape (B, T), got ", tokens.sizes());
    const at::Tensor ids = tokens.to(at::kCPU, at::kLong).contiguous();
    at::Tensor logits = at::empty({ids.size(0), impl_->cfg.vocab_size}, at::kFloat);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->prefill(ids.data_ptr<int64_t>(), ids.size(0), ids.size(1), state, logits.data_ptr<float>());
    return logits;
}

std::string CpuEngine::prefill_gemm_name() const {
    return impl_->gemm_name();
}

double CpuEngine::measure_prefill_gemm_gflops() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->measure_gemm_gflops();
}

std::pair<std::string, double> CpuEngine::measure_fastest_gemm_gflops() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->measure_fastest_gemm();
}

std::string prefill_gemm_path(const std::string& dtype, const std::string& option) {
    std::string want = option;
    const char* from = "";
    if (want == "auto") {
        const char* env = std::getenv("AVIARY_PREFILL_GEMM");
        if (env && *env) want = env, from = " from $AVIARY_PREFILL_GEMM";
    }
    AVIARY_CHECK(want == "auto" || want == "onednn" || want == "blas" || want == "libtorch",
                 "CpuEngine: unknown prefill GEMM path '", want, "'", from,
                 " (expected auto, onednn, blas or libtorch)");
    const cpu::OneDnnInfo& dnn = cpu::onednn_info();
    if (want == "onednn") {
        AVIARY_CHECK(dnn.available, "CpuEngine: prefill GEMM 'onednn' asked for, but this build has no oneDNN");
        AVIARY_CHECK(dtype != "bf16" || dnn.bf16_supported,
                     "CpuEngine: prefill GEMM 'onednn' has no bf16 matmul on ISA ", dnn.isa, " (needs AVX-512)");
        AVIARY_CHECK(dtype != "int8" || dnn.int8_supported,
                     "CpuEngine: prefill GEMM 'onednn' int8 needs VNNI or "
                     "AMX-INT8 (ISA here: ",
                     dnn.isa, ")");
        return dtype == "fp32" ? "blas" : "onednn";
    }
    if (want == "auto") {
        if (dtype == "int8") return dnn.int8_matmul ? "onednn" : "blas";
        if (dtype == "bf16") return dnn.bf16_amx || cpu::bf16_gemm_rates().onednn_faster ? "onednn" : "blas";
        return "blas";
    }
    return want;
}

}  // namespace aviary
