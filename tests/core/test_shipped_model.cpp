// Tests of the shipped-model lookup (core/src/shipped_model.cpp): the environment variable first (and an error when
// it names nothing), then the installed directory, then the source tree; '*' patterns take the first match in sorted
// order; a miss names every place looked at. Scratch directories stand in for the install and source trees.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "aviary/core/shipped_model.h"
#include "common/error_of.h"
#include "common/scratch_dir.h"

namespace fs = std::filesystem;
using aviary::find_shipped_model_in;
using aviary::test::error_of;
using aviary::test::scratch_dir;

namespace {

void touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "x";
}

}  // namespace

TEST(ShippedModel, EnvironmentThenInstallThenSource) {
    const fs::path root = scratch_dir("shipped_model");
    const fs::path install = root / "share" / "models", source = root / "src" / "assets" / "models";
    const char* kEnv = "AVIARY_TEST_SHIPPED_MODEL";
    ::unsetenv(kEnv);
    touch(source / "demo.safetensors");
    EXPECT_EQ(find_shipped_model_in("demo.safetensors", kEnv, install.string(), source.string()),
              (source / "demo.safetensors").string());
    touch(install / "demo.safetensors");  // the installed copy wins over the source tree's
    EXPECT_EQ(find_shipped_model_in("demo.safetensors", kEnv, install.string(), source.string()),
              (install / "demo.safetensors").string());
    touch(root / "mine.safetensors");
    ::setenv(kEnv, (root / "mine.safetensors").c_str(), 1);  // the environment wins over both
    EXPECT_EQ(find_shipped_model_in("demo.safetensors", kEnv, install.string(), source.string()),
              (root / "mine.safetensors").string());
    ::setenv(kEnv, (root / "gone.safetensors").c_str(), 1);  // set but missing: an error, not a fallback
    const std::string e =
        error_of([&] { find_shipped_model_in("demo.safetensors", kEnv, install.string(), source.string()); });
    EXPECT_NE(e.find(kEnv), std::string::npos) << e;
    EXPECT_NE(e.find("gone.safetensors"), std::string::npos) << e;
    ::setenv(kEnv, "", 1);  // empty counts as unset
    EXPECT_EQ(find_shipped_model_in("demo.safetensors", kEnv, install.string(), source.string()),
              (install / "demo.safetensors").string());
    ::unsetenv(kEnv);
}

TEST(ShippedModel, PatternsTakeTheFirstSortedMatchAndMissesNameThePlaces) {
    const fs::path root = scratch_dir("shipped_model_glob");
    const fs::path install = root / "none", source = root / "models";
    const char* kEnv = "AVIARY_TEST_SHIPPED_MODEL";
    ::unsetenv(kEnv);
    touch(source / "vision-b.safetensors");
    touch(source / "vision-a.safetensors");
    touch(source / "vision-a.recipe.json");
    touch(source / "other-a.safetensors");
    EXPECT_EQ(find_shipped_model_in("vision-*.safetensors", kEnv, install.string(), source.string()),
              (source / "vision-a.safetensors").string());
    const std::string e =
        error_of([&] { find_shipped_model_in("audio-*.safetensors", kEnv, install.string(), source.string()); });
    for (const std::string& part : {std::string("audio-*.safetensors"), std::string("$") + kEnv, install.string(),
                                    source.string(), std::string("--model")})
        EXPECT_NE(e.find(part), std::string::npos) << part << " in " << e;
}

// The real lookup finds the models this source tree ships.
TEST(ShippedModel, FindsTheShippedModels) {
    for (const char* env : {"AVIARY_MUSIC_MODEL", "AVIARY_VISION_MODEL", "AVIARY_AUDIO_MODEL"}) ::unsetenv(env);
    EXPECT_TRUE(fs::exists(aviary::find_shipped_model("music-eagle-L6-D256.safetensors", "AVIARY_MUSIC_MODEL")));
    const std::string vision = aviary::find_shipped_model("vision-*.safetensors", "AVIARY_VISION_MODEL");
    EXPECT_EQ(fs::path(vision).filename().string().rfind("vision-", 0), 0u) << vision;
}
