// AudioSet readers (audio/src/audioset_readers.cpp) on the real formats: the shipped class_labels_indices.csv (527
// classes, quoted names with commas), a segment CSV with the 3 comment lines and ", "-separated quoted labels
// (rows copied in the format of eval_segments.csv, YTIDs starting with '-'), the AST JSON list, missing clips
// counted, and malformed lines reported with their line numbers.
#include <gtest/gtest.h>

#include <fstream>

#include "aviary/audio/audioset.h"
#include "aviary/core/error.h"
#include "wav_writer.h"

namespace aviary::audio {
namespace {

TEST(AudioSet, ClassLabels) {
    LabelTable t = read_class_labels(std::string(AVIARY_SOURCE_DIR) + "/assets/audio/class_labels_indices.csv");
    ASSERT_EQ(t.classes.size(), 527u);
    EXPECT_EQ(t.classes[0].mid, "/m/09x0r");
    EXPECT_EQ(t.classes[0].name, "Speech");
    EXPECT_EQ(t.classes[1].name, "Male speech, man speaking");
    EXPECT_EQ(t.classes[526].mid, "/m/07hvw1");
    EXPECT_EQ(t.classes[526].name, "Field recording");
    EXPECT_EQ(t.find("/m/01v_m0"), 501);
    EXPECT_EQ(t.find("/m/nope"), -1);
}

TEST(AudioSet, SegmentCsvAndClipDirectory) {
    auto dir = test::audio_scratch_dir("audio_segments");
    const auto csv = dir / "eval_segments.csv";
    std::ofstream(csv) << "# Segments csv created Sun Mar  5 10:54:25 2017\n"
                          "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
                          "# YTID, start_seconds, end_seconds, positive_labels\n"
                          "-0RWZT-miFs, 420.000, 430.000, \"/m/03v3yw,/m/0k4j\"\n"
                          "--4gqARaEJE, 0.000, 10.000, \"/m/09x0r\"\n"
                          "abc_DEF-123, 30.000, 40.000, \"/m/09x0r,/m/zzzz\"\n";
    auto segs = read_segments_csv(csv.string());
    ASSERT_EQ(segs.size(), 3u);
    EXPECT_EQ(segs[0].ytid, "-0RWZT-miFs");
    EXPECT_DOUBLE_EQ(segs[0].start, 420.0);
    EXPECT_DOUBLE_EQ(segs[0].end, 430.0);
    EXPECT_EQ(segs[0].mids, (std::vector<std::string>{"/m/03v3yw", "/m/0k4j"}));
    LabelTable t = label_table({{"/m/09x0r", "Speech"}, {"/m/0k4j", "Car"}, {"/m/03v3yw", "Keys jangling"}});
    test::write_wav((dir / "Y-0RWZT-miFs.wav").string(), std::vector<float>(100, 0.1f), 1, 16000);
    test::write_wav((dir / "Yabc_DEF-123.wav").string(), std::vector<float>(100, 0.1f), 1, 16000);
    ClipList l = read_clip_list(csv.string(), dir.string(), t);
    ASSERT_EQ(l.items.size(), 2u);
    ASSERT_EQ(l.missing.size(), 1u);
    EXPECT_NE(l.missing[0].find("Y--4gqARaEJE.wav"), std::string::npos);
    EXPECT_EQ(l.items[0].labels, (std::vector<int64_t>{2, 1}));
    EXPECT_EQ(l.unknown_labels, 1);  // /m/zzzz
}

TEST(AudioSet, AstJsonList) {
    auto dir = test::audio_scratch_dir("audio_json");
    test::write_wav((dir / "a.wav").string(), std::vector<float>(100, 0.1f), 1, 16000);
    std::ofstream(dir / "d.json") << R"({"data": [{"wav": "a.wav", "labels": "/m/068hy,/m/09x0r"},
                                                  {"wav": "/nonexistent/b.wav", "labels": "/m/09x0r"}]})";
    LabelTable t = label_table({{"/m/09x0r", "Speech"}, {"/m/068hy", "Domestic animals, pets"}});
    ClipList l = read_clip_list((dir / "d.json").string(), "", t);
    ASSERT_EQ(l.items.size(), 1u);
    EXPECT_EQ(l.items[0].labels, (std::vector<int64_t>{1, 0}));
    EXPECT_EQ(l.missing, (std::vector<std::string>{"/nonexistent/b.wav"}));
}

TEST(AudioSet, MalformedInputNamesTheLine) {
    auto dir = test::audio_scratch_dir("audio_badcsv");
    std::ofstream(dir / "s.csv") << "# a\n# b\n# c\nabc, 1.0, 2.0, \"/m/1\"\nbroken line without fields\n";
    try {
        read_segments_csv((dir / "s.csv").string());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("line 5"), std::string::npos) << e.what();
    }
    std::ofstream(dir / "l.csv") << "index,mid,display_name\n0,/m/a,\"A\"\n2,/m/b,\"B\"\n";
    EXPECT_THROW(read_class_labels((dir / "l.csv").string()), Error);
    std::ofstream(dir / "bad.json") << "{\"data\": 3}";
    EXPECT_THROW(read_clip_list((dir / "bad.json").string(), "", label_table({})), Error);
}

}  // namespace
}  // namespace aviary::audio
