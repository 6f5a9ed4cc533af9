// Errors in Aviary: libraries throw aviary::Error (one line, naming the file/value and what was
// expected); front ends catch once and print "error: ...". UsageError marks bad command-line use (exit 2).
// Follows STYLE.md (llama.cpp converts errors to exceptions at the API boundary).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace aviary {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad command-line usage: front ends exit with code 2.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& what) : Error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}
}  // namespace detail

}  // namespace aviary

// AVIARY_CHECK(cond, "what was expected", values...): throws aviary::Error with the pieces concatenated.
#define AVIARY_CHECK(cond, ...)                                                    \
    do {                                                                           \
        if (!(cond)) throw ::aviary::Error(::aviary::detail::concat(__VA_ARGS__)); \
    } while (0)

#define AVIARY_FAIL(...) throw ::aviary::Error(::aviary::detail::concat(__VA_ARGS__))
