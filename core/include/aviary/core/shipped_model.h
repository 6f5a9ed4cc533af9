// Where the demo models shipped in assets/models/ are found at run time: one lookup for every module (the music,
// vision and audio demo models), in the order the set-up contract installs them (DESIGN.md).
#pragma once
#include <string>

namespace aviary {

// The shipped model `file_name`: $env_var when it is set and not empty (it must then name an existing file), else
// <install prefix>/share/aviary/models/, else the source tree's assets/models/. One '*' in `file_name` matches any
// run of characters; the first match in sorted order wins. Throws aviary::Error naming the file and every place
// looked at (ending "pass --model").
std::string find_shipped_model(const std::string& file_name, const std::string& env_var);

// Same, with the two directories given (the installed one first): what find_shipped_model does with its built-in
// directories, open for tests.
std::string find_shipped_model_in(const std::string& file_name, const std::string& env_var,
                                  const std::string& install_dir, const std::string& source_dir);

}  // namespace aviary
