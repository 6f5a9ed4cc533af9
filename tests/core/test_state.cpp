// State tests: clone is a snapshot; save -> load -> continue gives the same logits as never stopping;
// the official time_state initial state is applied (transposed to [key][value], spec §3.3).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "common/compare.h"

using aviary::test::fixture;
using aviary::test::rel_close;

namespace {

TEST(State, SaveLoadContinueGivesIdenticalLogits) {
    auto model = aviary::Model::load(fixture("golden/v6_fp32.pth"));
    at::Tensor tokens = at::arange(3, 15, at::kLong).unsqueeze(0);
    auto state = model.new_state(1);
    model.forward(tokens.narrow(1, 0, 6), state, false);
    const std::string path = (std::filesystem::temp_directory_path() / "aviary_test_state.safetensors").string();
    state.save(path);
    at::Tensor a = model.forward(tokens.narrow(1, 6, 6), state, true);
    auto restored = aviary::State::load(path);
    at::Tensor b = model.forward(tokens.narrow(1, 6, 6), restored, true);
    EXPECT_TRUE(at::equal(a, b));
    std::remove(path.c_str());
}

TEST(State, CloneIsASnapshot) {
    auto model = aviary::Model::load(fixture("golden/v5_fp32.pth"));
    auto state = model.new_state(1);
    model.forward(at::arange(1, 6, at::kLong).unsqueeze(0), state, false);
    auto snap = state.clone();
    at::Tensor first = model.step(at::full({1}, 7, at::kLong), state);
    at::Tensor again = model.step(at::full({1}, 7, at::kLong), snap);
    EXPECT_TRUE(at::equal(first, again));
    EXPECT_GT(state.bytes(), 0u);
}

TEST(State, TimeStateIsTheInitialState) {
    auto tensors = aviary::read_checkpoint(fixture("golden/v6_state_bf16.pth"));
    auto expected = aviary::read_safetensors(fixture("golden/v6_state_bf16.expected.safetensors"));
    auto model = aviary::Model::from_tensors(tensors);
    auto state = model.new_state(2);
    for (int l = 0; l < model.config().n_layer; ++l) {
        const at::Tensor* want = aviary::find_tensor(expected, "init_state." + std::to_string(l) + ".wkv");
        ASSERT_NE(want, nullptr);
        EXPECT_TRUE(rel_close(state.wkv[l][1], *want, 0.0));
    }
}

TEST(State, LoadRejectsOtherFiles) {
    EXPECT_THROW(aviary::State::load(fixture("golden/v6_fp32.expected.safetensors")), aviary::Error);
    EXPECT_THROW(aviary::State::load("/nonexistent/state.safetensors"), aviary::Error);
}

TEST(State, MismatchedStateIsRejected) {
    auto model = aviary::Model::load(fixture("golden/v5_fp32.pth"));
    auto state = model.new_state(2);
    EXPECT_THROW(model.forward(at::arange(1, 4, at::kLong).unsqueeze(0), state, false), aviary::Error);
}

}  // namespace
