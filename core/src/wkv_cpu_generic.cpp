// The fused CPU WKV loops (wkv_cpu_loops.h) for the baseline instruction set: 1 lane (any head size) and 4 lanes
// (SSE2 on x86-64; GCC's generic vectors elsewhere).
#define AVIARY_WKV_LANES 1
#define AVIARY_WKV_NS scalar
#define AVIARY_WKV_NAME "scalar"
#include "wkv_cpu_body.inc"
#undef AVIARY_WKV_LANES
#undef AVIARY_WKV_NS
#undef AVIARY_WKV_NAME

#define AVIARY_WKV_LANES 4
#define AVIARY_WKV_NS baseline
#define AVIARY_WKV_NAME "baseline"
#include "wkv_cpu_body.inc"

namespace aviary::wkv_loops {
const Version& version_scalar() {
    return scalar::version();
}
const Version& version_baseline() {
    return baseline::version();
}
}  // namespace aviary::wkv_loops
