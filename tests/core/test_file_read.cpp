// read_whole_file (core/src/file_read.cpp), the one home of the whole-file readers: exact bytes (NULs, no newline
// translation), an empty file is read as empty, and a missing path or a directory is refused with `out` cleared.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "aviary/core/file_read.h"
#include "common/scratch_dir.h"

namespace fs = std::filesystem;
using aviary::read_whole_file;
using aviary::test::scratch_dir;

TEST(FileRead, ReadsExactBytes) {
    const fs::path dir = scratch_dir("file_read_bytes");
    std::string bytes("a\0b\r\nc\xff", 7);
    for (int i = 0; i < 100000; ++i) bytes += char(i * 7);
    std::ofstream(dir / "f.bin", std::ios::binary) << bytes;
    std::ofstream(dir / "empty.txt", std::ios::binary).flush();
    std::string out = "stale";
    ASSERT_TRUE(read_whole_file((dir / "f.bin").string(), out));
    EXPECT_EQ(out, bytes);
    ASSERT_TRUE(read_whole_file((dir / "empty.txt").string(), out));
    EXPECT_TRUE(out.empty());
    fs::remove_all(dir);
}

TEST(FileRead, RefusesMissingPathsAndDirectories) {
    const fs::path dir = scratch_dir("file_read_refuse");
    std::string out = "stale";
    EXPECT_FALSE(read_whole_file((dir / "missing.txt").string(), out));
    EXPECT_TRUE(out.empty());
    out = "stale";
    EXPECT_FALSE(read_whole_file(dir.string(), out)) << "a directory must not read as an empty file";
    EXPECT_TRUE(out.empty());
    fs::remove_all(dir);
}
