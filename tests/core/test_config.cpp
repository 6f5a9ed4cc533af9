// Config tests: version and shapes inferred by key presence; missing, unknown and wrongly shaped keys are
// refused with a message naming the key and the expected shape.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"
#include "aviary/core/error.h"
#include "common/compare.h"

using aviary::test::fixture;

namespace {

std::string error_of(const aviary::TensorList& t) {
    try {
        aviary::infer_config(t);
    } catch (const aviary::Error& e) {
        return e.what();
    }
    return "";
}

TEST(Config, V5AndV6AreRecognisedIndependentlyOfKeyOrder) {
    for (const char* name : {"v5_fp32", "v6_fp32"}) {
        auto t = aviary::read_checkpoint(fixture(std::string("golden/") + name + ".pth"));
        auto c1 = aviary::infer_config(t);
        std::reverse(t.begin(), t.end());
        auto c2 = aviary::infer_config(t);
        EXPECT_EQ(c1.to_json(), c2.to_json());
        EXPECT_EQ(c1.version, name[1] == '5' ? 5 : 6);
        EXPECT_GT(c1.n_params, 0);
    }
}

TEST(Config, RejectsUnknownMissingAndMisshapenKeys) {
    auto base = aviary::read_checkpoint(fixture("golden/v6_fp32.pth"));
    auto extra = base;
    extra.push_back({"blocks.0.att.mystery", at::zeros({3})});
    EXPECT_NE(error_of(extra).find("unknown key 'blocks.0.att.mystery'"), std::string::npos) << error_of(extra);

    auto missing = base;
    missing.erase(std::find_if(missing.begin(), missing.end(),
                               [](const auto& nt) { return nt.name == "blocks.1.ffn.value.weight"; }));
    EXPECT_NE(error_of(missing).find("blocks.1.ffn.value.weight"), std::string::npos) << error_of(missing);

    auto wrong = base;
    for (auto& nt : wrong)
        if (nt.name == "blocks.1.att.key.weight") nt.tensor = at::zeros({128, 64});
    EXPECT_NE(error_of(wrong).find("expected (128, 128)"), std::string::npos) << error_of(wrong);

    EXPECT_NE(error_of({}).find("no tensors"), std::string::npos);
}

}  // namespace
