// The render budget of chat templates (they come with model files, so they are untrusted):
// steps, string and list sizes, bytes built, live scopes and value nesting each fail with a
// message naming the limit and its value at the template line, and loops free their scopes
// per iteration so long ones run in constant memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "jinja/chat_template.h"
#include "jinja/limits.h"

using namespace tpro;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::ordered_json;

namespace {

const Json kContext = {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
                       {"add_generation_prompt", false}};

std::string render(const std::string& src, const Json& ctx = kContext) {
  return ChatTemplate(src, "tmpl.jinja").render(ctx);
}

// The message of the Error that rendering `src` throws ("" if none is thrown).
std::string error_of(const std::string& src, const Json& ctx = kContext) {
  try {
    render(src, ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kHint = "(hint: chat templates come with the model files and are untrusted";

}  // namespace

TEST(JinjaLimits, NestedRangeLoopsHitTheStepBudget) {
  // 10^6 inner iterations, each one more statement: 2 * 10^6 steps. These kept a scope per
  // iteration until the render ended (4.8 GB); now they stop at the budget, on line 3.
  std::string msg = error_of("{# nested #}\n{% for i in range(1000) %}\n{% for j in range(1000) %}{{ j }}{% endfor %}\n{% endfor %}");
  EXPECT_THAT(msg, StartsWith("tmpl.jinja:3:"));
  EXPECT_THAT(msg, HasSubstr("the template ran more than 1000000 steps (statements, loop iterations and macro calls), "
                             "the render limit " + kHint));
  // Recursion that branches is stopped by the same budget long before its depth limit.
  EXPECT_THAT(error_of("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"),
              HasSubstr("the template ran more than 1000000 steps"));
}

TEST(JinjaLimits, ConcatenationDoublingHitsTheStringLimit) {
  // '~' doubled to bad_alloc at 12 GB; it is now bounded like '*': 2^26 bytes pass, 2^27 not.
  const std::string doubling =
      "{% set ns = namespace(s='x') %}\n{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";
  EXPECT_EQ(error_of(doubling),
            "tmpl.jinja:2:44: '~' concatenation would make a string of 134217728 bytes, over the limit of 67108864 "
            "bytes " + kHint + ", so a render is bounded; real chat templates stay far below this)");
  EXPECT_THAT(error_of("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"),
              HasSubstr("'+' concatenation would make a string of 134217728 bytes, over the limit of 67108864 bytes"));
  EXPECT_THAT(error_of("{% set ns = namespace(l=[0]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}"),
              HasSubstr("'+' concatenation would make a list of 2097152 items, over the limit of 1048576 items"));
  EXPECT_THAT(error_of("{{ [0] * 2000000 }}"),
              HasSubstr("list repetition would make a list of 2000000 items, over the limit of 1048576 items"));
  // The largest string allowed still renders.
  EXPECT_EQ(render("{% set ns = namespace(s='x') %}{% for i in range(26) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
                   "{{ ns.s | length }}"),
            "67108864");
}

TEST(JinjaLimits, OutputAndBuiltBytesAreBounded) {
  // Printing a 32 MB string three times: the output would pass 64 MB.
  EXPECT_THAT(error_of("{% set s = 'x' * 33554432 %}{{ s }}{{ s }}{{ s }}"),
              HasSubstr("tmpl.jinja:1:43: the template's output would make a string of 100663296 bytes, over the "
                        "limit of 67108864 bytes"));
  // Strings built over and over (each under the size limit) stop at 1 GiB built: 100 copies
  // of a 16 MB string would be 1.6 GB of copying.
  EXPECT_THAT(error_of("{% set big = 'x' * 16777216 %}{% for i in range(100) %}{% set t = big ~ 'y' %}{% endfor %}"),
              HasSubstr("the template built more than 1073741824 bytes of strings and lists, the render limit " + kHint));
}

TEST(JinjaLimits, WidthsAndJoinsCannotAllocateWithoutBound) {
  EXPECT_THAT(error_of("{{ 'a'.ljust(1000000000000) }}"),
              HasSubstr("ljust() width would make a string of 1000000000000 bytes, over the limit of 67108864 bytes"));
  EXPECT_THAT(error_of("{{ 'a'.zfill(100000000) }}"), HasSubstr("zfill() width would make a string of 100000000 bytes"));
  EXPECT_THAT(error_of("{{ '%99999999999d' % 1 }}"), HasSubstr("a % format width would make a string of 99999999 bytes"));
  EXPECT_THAT(error_of("{{ '{:>99999999999}'.format(1) }}"), HasSubstr("a format width would make a string of"));
  EXPECT_THAT(error_of("{{ messages | tojson(indent=100000000) }}"),
              HasSubstr("tojson indent would make a string of 100000000 bytes"));
  EXPECT_THAT(error_of("{{ 'a\\nb' | indent(100000000) }}"), HasSubstr("indent width would make a string of 100000000 bytes"));
  // One 1 MB string joined 100 times over: the join stops as it passes the limit.
  EXPECT_THAT(error_of("{% set s = 'x' * 1048576 %}{{ ([s] * 100) | join }}"),
              HasSubstr("join would make a string of 68157440 bytes, over the limit of 67108864 bytes"));
  EXPECT_THAT(error_of("{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}"),
              HasSubstr("replace would make a string of"));
  EXPECT_THAT(error_of("{% set s = 'x' * 1048576 %}{{ [s] * 100 }}"), HasSubstr("printing a list would make a string of"));
}

TEST(JinjaLimits, LoopScopesAreFreedPerIteration) {
  // 10^5 iterations, each with a loop scope, a with-scope and a macro's scope: alive at once
  // they would pass the limit of 20000 live scopes; freed per iteration the render completes.
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% macro add(a, b) %}{{ a + b }}{% endmacro %}"
                   "{% for i in range(100000) %}{% with k = i %}{% set ns.n = add(ns.n, k) | int %}{% endwith %}{% endfor %}"
                   "{{ ns.n }}"),
           "4999950000");
  // A macro defined in a loop that stays inside it is freed too.
  EXPECT_EQ(render("{% for i in range(100000) %}{% macro m() %}{{ i }}{% endmacro %}{% if loop.last %}{{ m() }}{% endif %}"
                   "{% endfor %}"),
            "99999");
  // One that escapes through a namespace keeps its scope: it still sees its loop variable...
  EXPECT_EQ(render("{% set ns = namespace() %}{% for i in range(3) %}{% macro m() %}{{ i }}{% endmacro %}"
                   "{% set ns.f = m %}{% endfor %}{{ ns.f() }}"),
            "2");
  // ...and storing one per iteration hits the live-scope limit instead of growing without end.
  EXPECT_THAT(error_of("{% set ns = namespace() %}{% for i in range(100000) %}{% macro m() %}{{ i }}{% endmacro %}"
                       "{% set ns.f = m %}{% endfor %}"),
              HasSubstr("the template keeps more than 20000 variable scopes alive (a macro stored from inside a loop "
                        "keeps its iteration's), the render limit"));
}

TEST(JinjaLimits, DeepAndSelfContainingValuesFailInsteadOfOverflowingTheStack) {
  // A list nested 50000 deep (built, printed, compared and freed) and a namespace holding itself.
  const std::string deep =
      "{% set ns = namespace(x=0) %}{% for i in range(50000) %}{% set ns.x = [ns.x] %}{% endfor %}";
  EXPECT_THAT(error_of(deep + "{{ ns.x }}"), HasSubstr("repr: values nested more than 512 deep"));
  EXPECT_THAT(error_of(deep + "{{ ns.x | tojson }}"), HasSubstr("tojson: values nested more than 512 deep"));
  EXPECT_THAT(error_of(deep + "{{ ns.x == ns.x }}"), HasSubstr("comparison: values nested more than 512 deep"));
  EXPECT_EQ(render(deep + "done"), "done");
  EXPECT_THAT(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"),
              HasSubstr("values nested more than 512 deep (or a namespace that contains itself)"));
  // Data nested deeper than the limit is refused when it is converted.
  Json data = Json::array();
  for (int i = 0; i < 600; ++i) data = Json::array({data});
  Json ctx = kContext;
  ctx["deep"] = data;
  EXPECT_THAT(error_of("{{ 1 }}", ctx), HasSubstr("template data: values nested more than 512 deep"));
}

TEST(JinjaLimits, RealTemplatesStayFarBelowTheBudget) {
  // A long conversation through a Llama-3-style template renders as before.
  Json msgs = Json::array();
  std::string want = "<|begin_of_text|>";
  for (int i = 0; i < 2000; ++i) {
    std::string role = i % 2 ? "assistant" : "user", content = "message " + std::to_string(i);
    msgs.push_back({{"role", role}, {"content", content}});
    want += "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + content + "<|eot_id|>";
  }
  Json ctx = {{"messages", msgs}, {"add_generation_prompt", false}, {"bos_token", "<|begin_of_text|>"}};
  EXPECT_EQ(render("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' "
                   "+ m['content'] | trim + '<|eot_id|>' }}{% endfor %}",
                   ctx),
            want);
}
