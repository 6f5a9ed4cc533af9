// Reading a whole file into memory: the one home for the file readers that then parse the bytes (the parsers take
// the text and a source name for their errors). (Header-only declaration, no LibTorch.)
#pragma once
#include <string>

namespace aviary {

// The bytes of the file at `path` into `out`; false (out empty) when it cannot be opened or read, or is a
// directory. Callers give their own one-line error naming the file.
bool read_whole_file(const std::string& path, std::string& out);

}  // namespace aviary
