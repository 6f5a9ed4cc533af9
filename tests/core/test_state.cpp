// State tests: clone is a snapshot; save -> load -> continue gives the same logits as never stopping;
// the official time_state initial state is applied (transposed to [key][value], spec §3.3).
#include <ATen/ATen.h>
#include <unistd.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <iterator>
#include <fstream>

#include "aviary/core/checkpoint.h"
#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "common/compare.h"
#include "common/error_of.h"

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

TEST(State, RowAndStackRoundTrip) {
    auto model = aviary::Model::load(fixture("golden/v6_fp32.pth"));
    auto batched = model.new_state(3);
    model.forward(at::randint(1, 500, {3, 5}, at::kLong), batched, false);  // three different rows
    const auto r0 = batched.row(0), r1 = batched.row(1), r2 = batched.row(2);
    EXPECT_EQ(r1.batch(), 1);
    EXPECT_FALSE(at::equal(r0.wkv[0], r1.wkv[0]));
    const auto again = aviary::State::stack({&r0, &r1, &r2});
    ASSERT_EQ(again.batch(), 3);
    for (int l = 0; l < batched.n_layer(); ++l) {
        EXPECT_TRUE(at::equal(again.att_shift[l], batched.att_shift[l]));
        EXPECT_TRUE(at::equal(again.wkv[l], batched.wkv[l]));
        EXPECT_TRUE(at::equal(again.ffn_shift[l], batched.ffn_shift[l]));
    }
    const auto swapped = aviary::State::stack({&r2, &r0});  // rows are copies, in the order given
    EXPECT_TRUE(at::equal(swapped.wkv[1][0], batched.wkv[1][2]));
    EXPECT_THROW(batched.row(3), aviary::Error);
    EXPECT_THROW(aviary::State::stack({}), aviary::Error);
}

// What a batched server relies on: each row of a batched decode step gives bit for bit the logits and state of the
// same sequence decoded alone (the CPU engine's batch kernels accumulate every dot product in the batch-1 order).
TEST(State, BatchedDecodeRowsEqualSingleDecodes) {
    for (const char* file : {"golden/v5_fp32.pth", "golden/v6_bf16.pth"}) {
        SCOPED_TRACE(file);
        aviary::ModelOptions options;
        options.dtype = "auto";  // bf16 files keep bf16 matrices (the engine's bf16 kernels)
        auto model = aviary::Model::load(fixture(file), options);
        model.train(false);
        constexpr int kB = 5;
        std::vector<aviary::State> singles;
        for (int b = 0; b < kB; ++b) {
            singles.push_back(model.new_state(1));
            model.forward(at::randint(1, 500, {1, 4 + b}, at::kLong), singles.back(), false);
        }
        std::vector<const aviary::State*> ptrs;
        for (auto& s : singles) ptrs.push_back(&s);
        aviary::Decoder batched(model, kB);
        batched.load_state(aviary::State::stack(ptrs));
        at::Tensor tokens = at::randint(1, 500, {kB}, at::kLong);
        for (int step = 0; step < 3; ++step) {
            at::Tensor all = batched.step(tokens);  // (B, V)
            for (int b = 0; b < kB; ++b) {
                aviary::Decoder one(model, 1);
                one.load_state(singles[b]);
                at::Tensor alone = one.step(tokens.narrow(0, b, 1));
                singles[b] = one.state().clone();
                EXPECT_TRUE(at::equal(all[b], alone[0])) << "row " << b << " step " << step << " max |diff| "
                                                         << (all[b] - alone[0]).abs().max().item<float>();
                EXPECT_TRUE(at::equal(batched.state().row(b).wkv[1], singles[b].wkv[1])) << "row " << b;
            }
            tokens = all.argmax(1);
        }
    }
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

// State files carry the model's fingerprint and are checked against the model that loads them: another width, or
// the same shapes from other weights, is an error naming the file; the fp32 and bf16 copies of one model agree.
TEST(State, LoadForChecksShapesAndFingerprint) {
    auto make = [](int L, int D, uint64_t seed, const std::string& dtype = "fp32") {
        aviary::ModelOptions o;
        o.dtype = dtype;
        return aviary::Model::from_tensors(aviary::init_weights(aviary::init_config(L, D, 6, 300), seed), o);
    };
    aviary::Model a = make(2, 64, 1), a_bf16 = make(2, 64, 1, "bf16"), other_seed = make(2, 64, 2),
                  wider = make(2, 128, 1), deeper = make(3, 64, 1);
    EXPECT_EQ(aviary::state_fingerprint(a), aviary::state_fingerprint(a_bf16));
    EXPECT_NE(aviary::state_fingerprint(a), aviary::state_fingerprint(other_seed));
    EXPECT_EQ(aviary::state_fingerprint(a).rfind("v6 L2 D64 H1 V300 #", 0), 0u) << aviary::state_fingerprint(a);

    const auto dir = std::filesystem::temp_directory_path();
    const std::string path = (dir / "aviary_test_state_for.safetensors").string();
    auto state = a.new_state(1);
    a.forward(at::arange(3, 9, at::kLong).unsqueeze(0), state, false);
    state.save_for(a, path, {{"note", "kept"}});
    aviary::Metadata md;
    const auto back = aviary::State::load_for(a_bf16, path, &md);
    EXPECT_TRUE(at::equal(back.wkv[1], state.wkv[1]));
    EXPECT_EQ(md["note"], "kept");
    auto message = [&](const aviary::Model& m) {
        try {
            aviary::State::load_for(m, path);
        } catch (const aviary::Error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    const std::string w = message(wider), d = message(deeper), o = message(other_seed);
    for (const auto& msg : {w, d, o}) EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(w.find("has shape (1, 64)"), std::string::npos) << w;
    EXPECT_NE(w.find("needs (1, 128)"), std::string::npos) << w;
    EXPECT_NE(d.find("2 layers"), std::string::npos) << d;
    EXPECT_NE(o.find("saved from another model"), std::string::npos) << o;
    // A state file from before fingerprints (plain save) is checked by its shapes alone.
    state.save(path);
    EXPECT_NO_THROW(aviary::State::load_for(other_seed, path));
    EXPECT_NE(message(wider).find("needs (1, 128)"), std::string::npos);
    std::remove(path.c_str());
}

// load_bytes / load_for_bytes are load / load_for on the file's bytes: the same state or the same error (naming the
// file), and an error names whatever source they are given.
TEST(State, LoadOfTheBytesIsLoadOfTheFile) {
    auto make = [](int D, uint64_t seed) {
        return aviary::Model::from_tensors(aviary::init_weights(aviary::init_config(2, D, 6, 300), seed));
    };
    aviary::Model a = make(64, 1), other = make(64, 2), wider = make(128, 1);
    const auto dir = std::filesystem::temp_directory_path();
    const std::string path = (dir / ("aviary_test_state_bytes_" + std::to_string(::getpid()))).string();
    auto state = a.new_state(1);
    a.forward(at::arange(3, 9, at::kLong).unsqueeze(0), state, false);
    state.save_for(a, path, {{"note", "kept"}});
    std::string good;
    {
        std::ifstream f(path, std::ios::binary);
        good.assign(std::istreambuf_iterator<char>(f), {});
    }
    const std::string bytes_cases[] = {good, good.substr(0, good.size() / 2), "", std::string(64, 'x'),
                                       good.substr(0, 8) + "{\"__metadata__\": 3}"};
    const aviary::Model* const models[] = {nullptr, &a, &other, &wider};  // nullptr: load / load_bytes
    size_t refused = 0;
    for (size_t i = 0; i < std::size(bytes_cases); ++i) {
        SCOPED_TRACE(i);
        const std::string& bytes = bytes_cases[i];
        { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }
        for (const aviary::Model* m : models) {
            aviary::Metadata md_file, md_bytes;
            aviary::State from_file, from_bytes;
            auto load = [&](bool file, const std::string& source, aviary::Metadata& md) {
                if (m == nullptr)
                    return file ? aviary::State::load(path, &md)
                                : aviary::State::load_bytes(bytes.data(), bytes.size(), source, &md);
                return file ? aviary::State::load_for(*m, path, &md)
                            : aviary::State::load_for_bytes(*m, bytes.data(), bytes.size(), source, &md);
            };
            const std::string file_error = aviary::test::error_of([&] { from_file = load(true, path, md_file); });
            const std::string bytes_error = aviary::test::error_of([&] { from_bytes = load(false, path, md_bytes); });
            EXPECT_EQ(bytes_error, file_error);
            EXPECT_EQ(md_bytes, md_file);
            ASSERT_EQ(from_bytes.n_layer(), from_file.n_layer());
            for (int l = 0; l < from_file.n_layer(); ++l) {
                EXPECT_TRUE(at::equal(from_bytes.wkv[l], from_file.wkv[l]));
                EXPECT_TRUE(at::equal(from_bytes.att_shift[l], from_file.att_shift[l]));
                EXPECT_TRUE(at::equal(from_bytes.ffn_shift[l], from_file.ffn_shift[l]));
            }
            if (file_error == "(no error)") continue;
            ++refused;
            EXPECT_NE(file_error.find(path), std::string::npos) << file_error;
            const std::string error = aviary::test::error_of([&] { load(false, "memory:chat.state", md_bytes); });
            EXPECT_NE(error.find("memory:chat.state"), std::string::npos) << error;
        }
    }
    EXPECT_EQ(refused, 18u);  // the valid file is refused by the other model and the wider one; the rest by all four
    std::remove(path.c_str());
}

}  // namespace
