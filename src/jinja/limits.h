// Resource limits of one parse and one render. Chat templates come with model files, so they
// are untrusted: a parse is bounded in nesting depth, a render in steps (statements, loop
// iterations, macro calls), string and list sizes, bytes built (which bounds quadratic
// `ns.s = ns.s ~ x` loops), live scopes, value nesting and recursion depth. Each limit fails
// with a JinjaError naming the limit and its value at the template line and column.
// The meter is per thread (a render runs on one thread); outside a render nothing is counted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tpro::jinja {

constexpr int64_t kMaxRenderSteps = 1'000'000;        // statements + loop iterations + macro calls
constexpr size_t kMaxStringBytes = size_t{64} << 20;  // one string, the rendered text included
constexpr size_t kMaxListItems = size_t{1} << 20;     // one list (~100 MB of values)
constexpr uint64_t kMaxBuiltBytes = uint64_t{1} << 30;  // strings and lists built by one render
constexpr int kMaxNesting = 512;                      // lists/dicts inside each other, for repr, tojson, ==
constexpr size_t kMaxLiveScopes = 20000;              // variable scopes alive at once
// Blocks, brackets, call arguments, unary operators and each link of an operator, filter,
// test, attribute or call chain, inside each other; checked while parsing, so no deeper tree
// is ever built (and rendering or freeing one recurses at most this deep per macro call).
constexpr int kMaxAstDepth = 256;
// Statements and expressions being rendered inside each other, across macro calls: a macro
// recursing from deep inside its body would multiply the two depths (~1 KB of stack a level).
constexpr int kMaxRenderDepth = 1000;

struct RenderMeter {
  int64_t steps = 0;
  uint64_t built_bytes = 0;
};

// Installs `m` as this thread's meter for the lifetime of the object (restores the previous).
class MeterScope {
 public:
  explicit MeterScope(RenderMeter& m);
  ~MeterScope();
  MeterScope(const MeterScope&) = delete;
  MeterScope& operator=(const MeterScope&) = delete;

 private:
  RenderMeter* prev_;
};

// Fails (located at line:col) when the template nests `depth` levels deep, past kMaxAstDepth.
void check_ast_depth(int depth, int line, int col);
// Fails when `levels` statements and expressions are being rendered inside each other, past
// kMaxRenderDepth.
void check_render_depth(int levels);
// One more statement, loop iteration or macro call; fails past kMaxRenderSteps.
void count_step();
// `what` would produce a string of `bytes` / a list of `items`: fails past kMaxStringBytes /
// kMaxListItems. Called before building, so nothing over the limit is ever allocated.
void check_string(uint64_t bytes, std::string_view what);
void check_list(uint64_t items, std::string_view what);
// Fails when a render would hold more than kMaxLiveScopes scopes.
void check_live_scopes(size_t n);
// Adds bytes built (every string and list Value made, every append to the output); fails
// past kMaxBuiltBytes.
void charge_built(uint64_t bytes);

// Counts one level of recursion into a nested value (repr, tojson, ==, <, data conversion);
// fails deeper than kMaxNesting instead of overflowing the stack (or looping on a namespace
// that contains itself).
class NestingGuard {
 public:
  explicit NestingGuard(std::string_view what);
  ~NestingGuard();
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;
};

}  // namespace tpro::jinja
