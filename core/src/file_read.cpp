// read_whole_file (file_read.h).
#include "aviary/core/file_read.h"

#include <fstream>
#include <sstream>

namespace aviary {

bool read_whole_file(const std::string& path, std::string& out) {
    out.clear();
    std::ifstream f(path, std::ios::binary);
    if (!f.good()) return false;
    std::ostringstream text;
    text << f.rdbuf();
    if (f.bad()) return false;
    out = text.str();
    return true;
}

}  // namespace aviary
