// AudioSet readers (audio/src/audioset_readers.cpp) on the real formats: the shipped class_labels_indices.csv (527
// classes, quoted names with commas), a segment CSV with the 3 comment lines and ", "-separated quoted labels
// (rows copied in the format of eval_segments.csv, YTIDs starting with '-'), the AST JSON list, missing clips
// counted, and malformed lines reported with their line numbers.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "aviary/audio/audioset.h"
#include "aviary/core/error.h"
#include "common/error_of.h"
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

// The parse_* entries are the read_* functions on the file's text: the same values or the same error (naming the file),
// and an error names whatever source they are given.
TEST(AudioSet, ParseOfTheTextIsReadOfTheFile) {
    auto dir = test::audio_scratch_dir("audio_parse");
    test::write_wav((dir / "Yabc.wav").string(), std::vector<float>(100, 0.1f), 1, 16000);
    test::write_wav((dir / "a.wav").string(), std::vector<float>(100, 0.1f), 1, 16000);
    const LabelTable t = label_table({{"/m/1", "One"}, {"/m/2", "Two"}});
    const std::pair<const char*, std::string> cases[] = {
        {"labels.csv", "index,mid,display_name\n0,/m/1,\"One, the first\"\n\n1,/m/2,Two\n"},
        {"labels_gap.csv", "index,mid,display_name\n0,/m/a,\"A\"\n2,/m/b,\"B\"\n"},
        {"segments.csv", "# a\n# b\n# c\nabc, 1.0, 2.0, \"/m/1,/m/9\"\nmissing, 0, 10, \"/m/2\"\n"},
        {"segments_bad.csv", "# a\nabc, 1.0, 2.0, \"/m/1\"\nbroken line without fields\n"},
        {"segments_nan.csv", "abc, one, 2.0, \"/m/1\"\n"},
        {"list.json", R"({"data": [{"wav": "a.wav", "labels": "/m/2,/m/1"}, {"wav": "b.wav", "labels": "/m/1"}]})"},
        {"list_bad.json", R"({"data": 3})"},
        {"list_entry.json", R"({"data": [{"wav": 1, "labels": "/m/1"}]})"},
        {"list_text.json", "{not json"},
    };
    auto flatten_labels = [](const LabelTable& l) {
        std::string out;
        for (const auto& c : l.classes) out += "[" + c.mid + "|" + c.name + "]";
        return out;
    };
    auto flatten_segments = [](const std::vector<Segment>& segs) {
        std::string out;
        for (const auto& s : segs) {
            out += "[" + s.ytid + "|" + std::to_string(s.start) + "|" + std::to_string(s.end);
            for (const auto& m : s.mids) out += "|" + m;
            out += "]";
        }
        return out;
    };
    auto flatten_clips = [](const ClipList& l) {
        std::string out;
        for (const auto& c : l.items) {
            out += "[" + c.path;
            for (int64_t i : c.labels) out += "|" + std::to_string(i);
            out += "]";
        }
        for (const auto& m : l.missing) out += "(" + m + ")";
        return out + std::to_string(l.unknown_labels);
    };
    size_t refused = 0, compared = 0;
    for (const auto& [name, text] : cases) {
        SCOPED_TRACE(name);
        const std::string path = (dir / name).string();
        std::ofstream(path, std::ios::binary) << text;
        const std::string source = std::string("memory:") + name;
        // Each reader that takes this kind of file: {read, parse, parse under another name}.
        std::vector<std::function<std::string(bool, const std::string&)>> readers;
        if (std::string(name).rfind("labels", 0) == 0) {
            readers.push_back([&](bool from_file, const std::string& src) {
                return flatten_labels(from_file ? read_class_labels(path) : parse_class_labels(text, src));
            });
        } else if (std::string(name).rfind("segments", 0) == 0) {
            readers.push_back([&](bool from_file, const std::string& src) {
                return flatten_segments(from_file ? read_segments_csv(path) : parse_segments_csv(text, src));
            });
        }
        if (std::string(name).rfind("labels", 0) != 0) {
            readers.push_back([&](bool from_file, const std::string& src) {
                const std::string clips =
                    src.size() > 4 && src.compare(src.size() - 4, 4, ".csv") == 0 ? dir.string() : "";
                return flatten_clips(from_file ? read_clip_list(path, clips, t) : parse_clip_list(text, src, clips, t));
            });
        }
        for (const auto& reader : readers) {
            std::string read, parsed;
            const std::string read_error = test::error_of([&] { read = reader(true, path); });
            const std::string parse_error = test::error_of([&] { parsed = reader(false, path); });
            EXPECT_EQ(parse_error, read_error);
            EXPECT_EQ(parsed, read);
            ++compared;
            if (read_error == "(no error)") continue;
            ++refused;
            EXPECT_NE(read_error.find(path), std::string::npos) << read_error;
            const std::string error = test::error_of([&] { reader(false, source); });
            EXPECT_NE(error.find(source), std::string::npos) << error;
        }
    }
    EXPECT_EQ(compared, 12u);  // label files 2, segment CSVs 3 × 2 (segments, clip list), JSON lists 4
    EXPECT_EQ(refused, 8u);    // all but the first of each kind
    EXPECT_EQ(flatten_labels(parse_class_labels(cases[0].second, "x.csv")), "[/m/1|One, the first][/m/2|Two]");
    const ClipList json = parse_clip_list(cases[5].second, (dir / "list.json").string(), "", t);
    EXPECT_EQ(flatten_clips(json), "[" + (dir / "a.wav").string() + "|1|0](" + (dir / "b.wav").string() + ")0");
    const ClipList csv = parse_clip_list(cases[2].second, "x.csv", dir.string(), t);
    EXPECT_EQ(csv.items.size(), 1u);
    EXPECT_EQ(csv.unknown_labels, 1);
}

}  // namespace
}  // namespace aviary::audio
