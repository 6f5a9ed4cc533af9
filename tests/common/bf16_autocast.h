// Test helper: CPU bf16 autocast for a scope, as the trainer's bf16 steps run (CpuAutocastBf16, core/src/trainer.cpp;
// Python's `torch.autocast("cpu", dtype=torch.bfloat16)`); the previous settings restored and the cast cache cleared
// at the end.
#pragma once
#include <ATen/autocast_mode.h>

namespace aviary::test {

class Bf16Autocast {
public:
    Bf16Autocast() {
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    }
    ~Bf16Autocast() {
        at::autocast::set_cpu_enabled(was_);
        at::autocast::set_autocast_cpu_dtype(dtype_);
        at::autocast::clear_cache();
    }
    Bf16Autocast(const Bf16Autocast&) = delete;
    Bf16Autocast& operator=(const Bf16Autocast&) = delete;

private:
    bool was_ = at::autocast::is_cpu_enabled();
    at::ScalarType dtype_ = at::autocast::get_autocast_cpu_dtype();
};

}  // namespace aviary::test
