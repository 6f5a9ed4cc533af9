// Q-Shift (audio/src/q_shift.cpp) on a hand-made 2 × 3 grid with expected values written out by hand, for the
// slicing form and the loop reference, plus per-head quarters on random input (both forms agree).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "aviary/audio/q_shift.h"
#include "common/compare.h"

namespace aviary::audio {
namespace {

// Grid (h = time row, w = mel column), tokens n = h·3 + w:   n0 n1 n2 / n3 n4 n5.  x[n][c] = 10·n + c + 1, C = 4, 1
// head.
at::Tensor hand_grid() {
    at::Tensor x = at::empty({1, 6, 4}, at::kFloat);
    for (int n = 0; n < 6; ++n)
        for (int c = 0; c < 4; ++c) x[0][n][c] = float(10 * n + c + 1);
    return x;
}
// c0 from the left (w−1), c1 from the right (w+1), c2 from above (h−1), c3 from below (h+1); 0 outside.
const float kExpected[6][4] = {
    {0, 12, 0, 34},   // n0 (h0,w0): left none, right n1, above none, below n3
    {1, 22, 0, 44},   // n1 (h0,w1): left n0, right n2, below n4
    {11, 0, 0, 54},   // n2 (h0,w2): left n1, right none, below n5
    {0, 42, 3, 0},    // n3 (h1,w0): right n4, above n0
    {31, 52, 13, 0},  // n4 (h1,w1): left n3, right n5, above n1
    {41, 0, 23, 0},   // n5 (h1,w2): left n4, above n2
};

TEST(QShift, HandMadeGrid) {
    at::Tensor expected = at::empty({1, 6, 4}, at::kFloat);
    for (int n = 0; n < 6; ++n)
        for (int c = 0; c < 4; ++c) expected[0][n][c] = kExpected[n][c];
    EXPECT_TRUE(test::rel_close(q_shift(hand_grid(), 2, 3, 1), expected, 0));
    EXPECT_TRUE(test::rel_close(q_shift_reference(hand_grid(), 2, 3, 1), expected, 0));
}

TEST(QShift, PerHeadQuartersAgreeWithReference) {
    at::manual_seed(3);
    at::Tensor x = at::randn({2, 5 * 4, 3 * 8});  // grid 5 × 4, 3 heads of 8 channels (quarters of 2)
    at::Tensor a = q_shift(x, 5, 4, 3), b = q_shift_reference(x, 5, 4, 3);
    EXPECT_TRUE(test::rel_close(a, b, 0));
    // head 1, channel 8 + 0 (its first quarter) at (h 2, w 1) comes from (h 2, w 0)
    EXPECT_EQ(a[0][2 * 4 + 1][8].item<float>(), x[0][2 * 4 + 0][8].item<float>());
    // head 2, channel 16 + 6 (its fourth quarter) at (h 4, w 3) is a bottom border: 0
    EXPECT_EQ(a[1][4 * 4 + 3][22].item<float>(), 0.0f);
}

TEST(QShift, RejectsBadGrid) {
    EXPECT_ANY_THROW(q_shift(at::zeros({1, 7, 4}), 2, 3, 1));
}

}  // namespace
}  // namespace aviary::audio
