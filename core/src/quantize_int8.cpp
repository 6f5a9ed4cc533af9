// Symmetric per-output-channel int8 quantisation of weight matrices for the CPU decode engine
// (cpu_engine_kernels.h): one fp32 scale per row, max |w| / 127, values rounded to nearest. The same scheme as
// LLM.int8's vector-wise weight quantisation without outliers; the decode kernels multiply the scale back per row.
#include <algorithm>
#include <cmath>

#include "aviary/core/cpu_engine_kernels.h"

namespace aviary::cpu {

void quantize_rows_int8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = w + r * cols;
        float amax = 0;
        for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(row[c]));
        const float s = amax > 0 ? amax / 127.0f : 1.0f;
        scale[r] = s;
        const float inv = 1.0f / s;
        for (int64_t c = 0; c < cols; ++c) {
            // round half to even as std::nearbyint does (|v| <= 127 here), by the 1.5·2^23 trick: no libm call, so
            // the loop vectorises (the prefill quantises every GEMM input row with this)
            const float v = (row[c] * inv + 12582912.0f) - 12582912.0f;
            q[r * cols + c] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
    }
}

}  // namespace aviary::cpu
