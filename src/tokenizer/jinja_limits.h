// Resource limits of one render. Chat templates come with model files, so they are untrusted:
// every render is bounded in steps (statements, loop iterations, macro calls), in the size of
// any one string (the output included) and list, in the bytes of strings and lists it builds
// (which bounds quadratic `ns.s = ns.s ~ x` loops), and in value nesting. Each limit fails with
// a JinjaError naming the limit and its value; the renderer adds the template line.
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
