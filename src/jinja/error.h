// The interpreter's internal error: thrown by lexer, parser, values, filters and methods with
// the message only; the innermost template node that sees it adds line and column, and
// ChatTemplate turns it into a tpro::Error "<origin>:<line>:<col>: <message>".
#pragma once
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace tpro::jinja {

class JinjaError : public std::runtime_error {
 public:
  explicit JinjaError(const std::string& msg, int line = 0, int col = 0)
      : std::runtime_error(msg), line(line), col(col) {}
  bool located() const { return line > 0; }
  int line, col;
};

template <typename... Args>
[[noreturn]] void jinja_fail(const Args&... args) {
  throw JinjaError(cat(args...));
}

}  // namespace tpro::jinja
