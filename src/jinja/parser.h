// Jinja parser: tokens to a Template tree, following jinja2/parser.py's grammar and operator
// precedence (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary <
// postfix/filters/tests). Statements: if/elif/else, for (+else, inline if), set (+block,
// namespace attributes), macro, call, filter, with, generation, break/continue.
// Not supported: extends/block/include/import (templates are self-contained), recursive loops.
#pragma once
#include <memory>
#include <string_view>

#include "jinja/ast.h"

namespace tpro::jinja {

// Throws JinjaError located at the offending token.
std::unique_ptr<Template> parse_template(std::string_view source);

}  // namespace tpro::jinja
