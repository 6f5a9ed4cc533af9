// Test helpers: relative error max|a−b| / max|b| with the worst element reported, and fixture paths.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace aviary::test {

inline std::string fixture(const std::string& rel) {
    return std::string(AVIARY_FIXTURES_DIR) + "/" + rel;
}

// Returns an AssertionResult so failures print the worst element and both values.
inline ::testing::AssertionResult rel_close(const at::Tensor& actual, const at::Tensor& expected, double tol) {
    at::Tensor a = actual.detach().to(at::kCPU, at::kDouble).contiguous();
    at::Tensor b = expected.detach().to(at::kCPU, at::kDouble).contiguous();
    if (a.sizes() != b.sizes()) {
        std::ostringstream os;
        os << "shape mismatch: " << a.sizes() << " vs " << b.sizes();
        return ::testing::AssertionFailure() << os.str();
    }
    if (!a.isfinite().all().item<bool>()) return ::testing::AssertionFailure() << "actual has non-finite values";
    at::Tensor diff = (a - b).abs().flatten();
    const double scale = b.abs().max().item<double>();
    const int64_t worst = diff.argmax().item<int64_t>();
    const double err = diff[worst].item<double>() / (scale > 0 ? scale : 1.0);
    std::ostringstream os;
    os << "max|a-b|/max|b| = " << err << " (tol " << tol << "), worst flat index " << worst << ": actual "
       << a.flatten()[worst].item<double>() << " expected " << b.flatten()[worst].item<double>();
    if (err <= tol) return ::testing::AssertionSuccess() << os.str();
    return ::testing::AssertionFailure() << os.str();
}

}  // namespace aviary::test
