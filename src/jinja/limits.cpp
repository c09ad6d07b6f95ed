// The per-thread render meter and the limit checks; see limits.h.
#include "jinja/limits.h"

#include "jinja/error.h"

namespace tpro::jinja {

namespace {

thread_local RenderMeter* t_meter = nullptr;
thread_local int t_nesting = 0;

constexpr const char* kHint =
    " (hint: chat templates come with the model files and are untrusted, so a render is bounded; "
    "real chat templates stay far below this)";

}  // namespace

void charge_built(uint64_t bytes) {
  if (!t_meter) return;
  t_meter->built_bytes += bytes;
  if (t_meter->built_bytes > kMaxBuiltBytes)
    jinja_fail("the template built more than ", kMaxBuiltBytes, " bytes of strings and lists, the render limit", kHint);
}

MeterScope::MeterScope(RenderMeter& m) : prev_(t_meter) { t_meter = &m; }
MeterScope::~MeterScope() { t_meter = prev_; }

void check_ast_depth(int depth, int line, int col) {
  if (depth > kMaxAstDepth)
    throw JinjaError(cat("the template nests more than ", kMaxAstDepth,
                         " levels deep (blocks, brackets, calls and operator, filter, attribute and call chains "
                         "inside each other), the parse limit (hint: chat templates come with the model files "
                         "and are untrusted, so parsing is bounded; real chat templates nest far less deep, and a "
                         "long chain can be split with {% set %})"),
                     line, col);
}

void check_render_depth(int levels) {
  if (levels > kMaxRenderDepth)
    jinja_fail("the template renders statements and expressions more than ", kMaxRenderDepth,
               " levels inside each other (macro calls from deep inside macros), the render limit", kHint);
}

void count_step() {
  if (!t_meter) return;
  if (++t_meter->steps > kMaxRenderSteps)
    jinja_fail("the template ran more than ", kMaxRenderSteps,
               " steps (statements, loop iterations and macro calls), the render limit", kHint);
}

void check_string(uint64_t bytes, std::string_view what) {
  if (bytes > kMaxStringBytes)
    jinja_fail(what, " would make a string of ", bytes, " bytes, over the limit of ", kMaxStringBytes, " bytes", kHint);
}

void check_list(uint64_t items, std::string_view what) {
  if (items > kMaxListItems)
    jinja_fail(what, " would make a list of ", items, " items, over the limit of ", kMaxListItems, " items", kHint);
}

void check_live_scopes(size_t n) {
  if (n > kMaxLiveScopes)
    jinja_fail("the template keeps more than ", kMaxLiveScopes,
               " variable scopes alive (a macro stored from inside a loop keeps its iteration's), the render limit", kHint);
}

NestingGuard::NestingGuard(std::string_view what) {
  if (t_nesting >= kMaxNesting)
    jinja_fail(what, ": values nested more than ", kMaxNesting, " deep (or a namespace that contains itself), the limit", kHint);
  ++t_nesting;
}
NestingGuard::~NestingGuard() { --t_nesting; }

}  // namespace tpro::jinja
