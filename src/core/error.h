// Errors at the boundaries (files, configs, datasets, CLI, HTTP) and invariant checks inside.
// tpro::Error carries one human-readable message: where (path, offset, line, key), expected
// vs got, and a "(hint: ...)" when the fix is not obvious. Kernels never throw: they use
// TPRO_CHECK, which aborts with file:line, because a broken invariant is a bug, not bad input.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tpro {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Concatenates anything streamable: cat("tensor ", name, " has ", n, " elements").
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace tpro

#define TPRO_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond)) ::tpro::check_failed(#cond, __FILE__, __LINE__, ::tpro::cat(__VA_ARGS__)); \
  } while (0)
