// Tree-walking interpreter for a parsed Jinja template. Scoping follows Jinja: a for-loop
// iteration, macro, call/filter/set/with block or {% generation %} body gets its own scope;
// {% if %} does not; macros see their defining scope (lexical), not the caller's.
// Output is appended to one buffer, so {% generation %} spans are byte offsets into the result.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace tpro::jinja {

struct RenderResult {
  std::string text;
  // [begin, end) byte ranges of text produced inside {% generation %} blocks at top level.
  std::vector<std::pair<size_t, size_t>> generation_spans;
};

// Renders with `globals` as the outermost variables (a later duplicate name wins). Throws
// JinjaError located at the failing node.
RenderResult render_template(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& globals);

}  // namespace tpro::jinja
