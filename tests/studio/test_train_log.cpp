// Trainer JSONL log reading (apps/studio/train_log.cpp): the line format core/src/train_loop.cpp writes,
// incremental reading of a growing file (partial last line, truncation by a new run), errors naming the line,
// ETA and duration formatting, and the shipped model's real log.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aviary/core/error.h"
#include "common/cli_run.h"
#include "train_log.h"

using namespace aviary::studio;
namespace fs = std::filesystem;

TEST(StudioTrainLog, ParsesTrainerLine) {
    const auto p = parse_train_log_line(
        R"({"elapsed":3.78,"grad_norm":628.3,"loss":5.6143,"lr":0.0004,"step":1,"tokens":2048,"tokens_per_s":541.5})",
        1);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->step, 1);
    EXPECT_DOUBLE_EQ(p->loss, 5.6143);
    EXPECT_DOUBLE_EQ(p->lr, 0.0004);
    EXPECT_DOUBLE_EQ(p->grad_norm, 628.3);
    EXPECT_EQ(p->tokens, 2048);
    EXPECT_DOUBLE_EQ(p->tokens_per_s, 541.5);
    EXPECT_DOUBLE_EQ(p->elapsed, 3.78);
    EXPECT_FALSE(parse_train_log_line("   ", 2));
}

TEST(StudioTrainLog, BadLinesNameTheLine) {
    try {
        parse_train_log_line("{not json", 17);
        FAIL() << "no error";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find("line 17"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_train_log_line(R"({"step": 3})", 4), aviary::Error);  // no loss
    EXPECT_THROW(parse_train_log_line(R"({"step": "3", "loss": 1})", 4), aviary::Error);
    EXPECT_THROW(parse_train_log_line("[1, 2]", 4), aviary::Error);
}

TEST(StudioTrainLog, FollowsAGrowingFile) {
    const fs::path dir = aviary::test::scratch_dir("studio_trainlog");
    const std::string path = (dir / "train_log.jsonl").string();
    TrainLogReader r(path);
    EXPECT_TRUE(r.poll().empty());  // no file yet
    {
        std::ofstream f(path);
        f << R"({"step":1,"loss":5.0,"lr":1e-3,"elapsed":1.0})"
          << "\n"
          << R"({"step":2,"loss":4.)";  // partial
    }
    auto pts = r.poll();
    ASSERT_EQ(pts.size(), 1u);
    EXPECT_EQ(pts[0].step, 1);
    {
        std::ofstream f(path, std::ios::app);
        f << R"(5,"lr":1e-3,"elapsed":2.0})"
          << "\n"
          << R"({"step":3,"loss":4.0,"lr":9e-4,"elapsed":3.0})"
          << "\n";
    }
    pts = r.poll();
    ASSERT_EQ(pts.size(), 2u);
    EXPECT_EQ(pts[0].step, 2);
    EXPECT_DOUBLE_EQ(pts[0].loss, 4.5);
    EXPECT_EQ(pts[1].step, 3);
    EXPECT_FALSE(r.restarted());
    EXPECT_TRUE(r.poll().empty());
    {
        std::ofstream f(path, std::ios::trunc);  // a new run
        f << R"({"step":1,"loss":6.0})"
          << "\n";
    }
    pts = r.poll();
    EXPECT_TRUE(r.restarted());
    ASSERT_EQ(pts.size(), 1u);
    EXPECT_DOUBLE_EQ(pts[0].loss, 6.0);
}

TEST(StudioTrainLog, ReadsTheShippedModelsLog) {
    const std::string path = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.train_log.jsonl";
    // Independent count: the number of non-empty lines, and the first line's values as written in the file.
    std::ifstream f(path);
    ASSERT_TRUE(f.good()) << path;
    int64_t lines = 0;
    for (std::string l; std::getline(f, l);) lines += !l.empty();
    TrainLogReader r(path);
    const auto pts = r.poll();
    ASSERT_EQ(int64_t(pts.size()), lines);
    EXPECT_EQ(pts.front().step, 1);
    EXPECT_NEAR(pts.front().loss, 5.648573875427246, 1e-12);
    EXPECT_EQ(pts.back().step, lines);
    for (size_t i = 1; i < pts.size(); ++i) ASSERT_EQ(pts[i].step, pts[i - 1].step + 1);
}

TEST(StudioTrainLog, EtaFromRecentRate) {
    std::vector<TrainLogPoint> pts;
    EXPECT_EQ(eta_seconds(pts, 10), -1);
    for (int s = 1; s <= 30; ++s) {
        TrainLogPoint p;
        p.step = s;
        p.elapsed = s <= 10 ? s * 10.0 : 100 + (s - 10) * 2.0;  // slow start, then 2 s/step
        pts.push_back(p);
    }
    EXPECT_NEAR(eta_seconds(pts, 100, 20), 70 * 2.0, 1e-9);  // last 20 points: 2 s/step, 70 steps left
    EXPECT_EQ(format_duration(42), "42s");
    EXPECT_EQ(format_duration(185), "3m 05s");
    EXPECT_EQ(format_duration(3720), "1h 02m");
    EXPECT_EQ(format_duration(-1), "?");
}
