// read_whole_file (file_read.h).
#include "aviary/core/file_read.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace aviary {

bool read_whole_file(const std::string& path, std::string& out) {
    out.clear();
    std::error_code ec;  // libstdc++ opens a directory as an empty stream: refuse it here, not as an empty file
    if (std::filesystem::is_directory(path, ec)) return false;
    std::ifstream f(path, std::ios::binary);
    if (!f.good()) return false;
    std::ostringstream text;
    text << f.rdbuf();
    if (f.bad()) return false;
    out = text.str();
    return true;
}

}  // namespace aviary
