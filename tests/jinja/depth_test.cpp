// The parse depth limit of chat templates (kMaxAstDepth): brackets, operator and filter chains,
// calls and blocks nested 100000 deep overflowed the stack; they now fail while parsing with
// the limit, its value and the template position, and nestings just under the limit parse,
// render the right value and free their tree.
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

std::string render(const std::string& src) { return ChatTemplate(src, "tmpl.jinja").render(kContext); }

// The message of the Error that parsing or rendering `src` throws ("" if none is thrown).
std::string error_of(const std::string& src) {
  try {
    render(src);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// `open` n times, then `middle`, then `close` n times.
std::string nested(const std::string& open, const std::string& middle, const std::string& close, int n) {
  return repeat(open, n) + middle + repeat(close, n);
}

constexpr int kDeep = 100000;  // the nestings that overflowed the stack before the limit
constexpr int kOver = 3000;    // far past the limit, for the many other ways to nest
const std::string kLimit =
    "the template nests more than 256 levels deep (blocks, brackets, calls and operator, filter, attribute and "
    "call chains inside each other), the parse limit (hint: chat templates come with the model files and are "
    "untrusted, so parsing is bounded;";

}  // namespace

TEST(JinjaDepth, TheLimitsAreTheDocumentedValues) {
  EXPECT_EQ(jinja::kMaxAstDepth, 256);
  EXPECT_EQ(jinja::kMaxRenderDepth, 1000);
}

TEST(JinjaDepth, NestedParenthesesFailAtTheLimitWithItsPosition) {
  // The print statement and its expression take two levels, each '(' one more: what follows
  // the 255th '(' (the 256th, at column 259) is the 257th level.
  EXPECT_EQ(error_of("{{ " + nested("(", "1", ")", kDeep) + " }}"),
            "tmpl.jinja:1:259: " + kLimit +
                " real chat templates nest far less deep, and a long chain can be split with {% set %})");
  EXPECT_EQ(render("{{ " + nested("(", "1", ")", 254) + " }}"), "1");
  EXPECT_THAT(error_of("{{ " + nested("(", "1", ")", 255) + " }}"), HasSubstr(kLimit));
  // Parentheses around a growing sum: the tree is as deep as the brackets.
  EXPECT_EQ(render("{{ " + nested("(1 + ", "1", ")", 252) + " }}"), "253");
  EXPECT_THAT(error_of("{{ " + nested("(1 + ", "1", ")", kOver) + " }}"), HasSubstr(kLimit));
}

TEST(JinjaDepth, OperatorChainsCountOneLevelPerLink) {
  // Left-associative chains are built by a loop, but their tree is as deep as they are long,
  // and rendering and freeing it recurse: 254 terms pass, 255 do not, 100000 fail fast.
  EXPECT_EQ(render("{{ 'a'" + repeat(" ~ 'a'", 253) + " }}"), std::string(254, 'a'));
  EXPECT_THAT(error_of("{{ 'a'" + repeat(" ~ 'a'", 254) + " }}"), HasSubstr(kLimit));
  std::string msg = error_of("{{ 'a'" + repeat(" ~ 'a'", kDeep) + " }}");
  EXPECT_THAT(msg, StartsWith("tmpl.jinja:1:"));
  EXPECT_THAT(msg, HasSubstr(kLimit));
  EXPECT_EQ(render("{{ 1" + repeat(" + 1", 200) + " }}"), "201");
  for (const char* op : {" + 1", " - 1", " * 1", " / 1", " // 1", " % 2", " ** 1", " and 1", " or 1"}) {
    EXPECT_THAT(error_of("{{ 1" + repeat(op, kOver) + " }}"), HasSubstr(kLimit)) << op;
  }
  // Unary operators recurse: '-' and 'not'.
  EXPECT_EQ(render("{{ " + repeat("- ", 200) + "1 }}"), "1");
  EXPECT_EQ(render("{{ " + repeat("not ", 201) + "true }}"), "False");
  EXPECT_THAT(error_of("{{ " + repeat("- ", kOver) + "1 }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ " + repeat("not ", kOver) + "true }}"), HasSubstr(kLimit));
  // Inline if-expressions nest through 'else' and chain through 'if'.
  EXPECT_EQ(render("{{ " + repeat("0 if false else ", 200) + "7 }}"), "7");
  EXPECT_THAT(error_of("{{ " + repeat("0 if false else ", kOver) + "7 }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ 1" + repeat(" if true", kOver) + " }}"), HasSubstr(kLimit));
}

TEST(JinjaDepth, ComparisonChainsAreFlat) {
  // a == b == c is one node with n operands, evaluated by a loop: length is not depth.
  EXPECT_EQ(render("{{ 1" + repeat(" == 1", kDeep) + " }}"), "True");
  EXPECT_EQ(render("{{ 1" + repeat(" < 2", 2) + " }}"), "False");
}

TEST(JinjaDepth, FilterTestAttributeAndCallChainsAreBounded) {
  EXPECT_EQ(render("{{ 'x'" + repeat("|upper|lower", 120) + "|upper }}"), "X");
  EXPECT_THAT(error_of("{{ 'x'" + repeat("|upper", kDeep) + " }}"), HasSubstr(kLimit));
  // {% filter %} and {% set %} blocks take a chain too.
  EXPECT_EQ(render("{% filter upper" + repeat("|lower|upper", 100) + " %}y{% endfilter %}"), "Y");
  EXPECT_THAT(error_of("{% filter upper" + repeat("|lower", kOver) + " %}y{% endfilter %}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{% set s | upper" + repeat("|lower", kOver) + " %}y{% endset %}"), HasSubstr(kLimit));
  // Tests cannot chain ('1 is number is number' is an error), but they count inside chains.
  EXPECT_THAT(error_of("{{ 1" + repeat(" is number and 1", kOver) + " is number }}"), HasSubstr(kLimit));
  // Attribute, item and call chains.
  EXPECT_EQ(render("{{ " + nested("{'k': ", "5", "}", 100) + repeat(".k", 100) + " }}"), "5");
  EXPECT_EQ(render("{{ " + nested("[", "3", "]", 100) + repeat("[0]", 100) + " }}"), "3");
  EXPECT_THAT(error_of("{{ x" + repeat(".a", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ x" + repeat("[0]", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ x" + repeat("()", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ x" + repeat("[1:2]", kOver) + " }}"), HasSubstr(kLimit));
}

TEST(JinjaDepth, NestedLiteralsAndCallArgumentsAreBounded) {
  // Each list level is one parse level and one tree level.
  EXPECT_EQ(render("{{ " + nested("[", "7", "]", 253) + " }}"), nested("[", "7", "]", 253));
  EXPECT_THAT(error_of("{{ " + nested("[", "7", "]", 254) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ " + nested("[", "7", "]", kDeep) + " }}"), HasSubstr(kLimit));
  EXPECT_EQ(render("{{ " + nested("{'k': ", "1", "}", 250) + " | tojson }}"), nested("{\"k\": ", "1", "}", 250));
  EXPECT_THAT(error_of("{{ " + nested("{'k': ", "1", "}", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ " + nested("{", "1: 2", ": 1}", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ " + nested("(1, ", "1", ")", kOver) + " }}"), HasSubstr(kLimit));
  // Call arguments: positional, keyword, *args and **kwargs.
  const std::string macro = "{% macro f(x=0) %}{{ x }}{% endmacro %}";
  EXPECT_EQ(render(macro + "{{ " + nested("f(", "4", ")", 250) + " }}"), "4");
  EXPECT_THAT(error_of(macro + "{{ " + nested("f(", "4", ")", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of(macro + "{{ " + nested("f(x=", "4", ")", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of(macro + "{{ " + nested("f(*", "4", ")", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of(macro + "{{ " + nested("f(**", "4", ")", kOver) + " }}"), HasSubstr(kLimit));
  EXPECT_THAT(error_of("{{ 'a'|replace(" + nested("'a'|replace(", "'a', 'b'", ", 'c')", kOver) + ", 'c') }}"),
              HasSubstr(kLimit));
}

TEST(JinjaDepth, NestedIfsFailAtTheLimit) {
  // 255 nested ifs parse (the innermost condition is level 256) and render.
  EXPECT_EQ(render(nested("{% if true %}", "x", "{% endif %}", 255)), "x");
  EXPECT_THAT(error_of(nested("{% if true %}", "x", "{% endif %}", 256)), HasSubstr(kLimit));
  std::string msg = error_of(nested("{% if true %}", "x", "{% endif %}", kDeep));
  EXPECT_THAT(msg, StartsWith("tmpl.jinja:1:3322: "));  // the 256th if's condition, 13 characters an if
  EXPECT_THAT(msg, HasSubstr(kLimit));
}

TEST(JinjaDepth, NestedForLoopsFailAtTheLimit) {
  // The 253rd loop is level 253, its expression 254, the list 255 and its item 256.
  EXPECT_EQ(render(nested("{% for a in [1] %}", "{{ a }}", "{% endfor %}", 253)), "1");
  EXPECT_THAT(error_of(nested("{% for a in [1] %}", "{{ a }}", "{% endfor %}", 254)), HasSubstr(kLimit));
  EXPECT_THAT(error_of(nested("{% for a in [1] %}", "{{ a }}", "{% endfor %}", kDeep)), HasSubstr(kLimit));
}

TEST(JinjaDepth, EveryKindOfBlockCounts) {
  struct Block {
    const char* open;
    const char* close;
    int under;               // nestings that pass
    const char* rendered;   // what they render
  };
  const std::string caller = "{% macro f() %}{{ caller() }}{% endmacro %}";  // 2 macro calls a level
  for (const Block& b : {Block{"{% if false %}{% else %}", "{% endif %}", 250, "x"},
                         Block{"{% for a in [1] if a %}", "{% endfor %}", 250, "x"},
                         Block{"{% macro m() %}", "{% endmacro %}", 250, ""},
                         Block{"{% call f() %}", "{% endcall %}", 99, "x"},
                         Block{"{% set s %}", "{% endset %}{{ s }}", 250, "x"},
                         Block{"{% filter upper %}", "{% endfilter %}", 250, "X"},
                         Block{"{% with a = 1 %}", "{% endwith %}", 250, "x"},
                         Block{"{% generation %}", "{% endgeneration %}", 250, "x"}}) {
    EXPECT_THAT(error_of(caller + nested(b.open, "x", b.close, kOver)), HasSubstr(kLimit)) << b.open;
    EXPECT_EQ(render(caller + nested(b.open, "x", b.close, b.under)), b.rendered) << b.open;
  }
  // Blocks and expressions share the one budget.
  EXPECT_EQ(render(nested("{% if true %}", "{{ " + nested("(", "1", ")", 100) + " }}", "{% endif %}", 150)), "1");
  EXPECT_THAT(error_of(nested("{% if true %}", "{{ " + nested("(", "1", ")", 150) + " }}", "{% endif %}", 150)),
              HasSubstr(kLimit));
}

TEST(JinjaDepth, MacroRecursionFromDeepInsideABodyIsBoundedAcrossCalls) {
  // Each call sits at the bottom of a 240-link '~' chain, so every call is ~250 levels of
  // rendering: 199 nested calls needed ~45 MB of stack (the macro limit is 200 calls). The
  // render depth counts levels across macro calls: 3 calls pass, 199 stop at 1000 levels.
  const std::string macro =
      "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1)" + repeat(" ~ ''", 240) + " }}{% else %}done{% endif %}{% endmacro %}";
  EXPECT_EQ(render(macro + "{{ f(2) }}"), "done");
  std::string msg = error_of(macro + "{{ f(198) }}");
  EXPECT_THAT(msg, StartsWith("tmpl.jinja:1:"));
  EXPECT_THAT(msg, HasSubstr("the template renders statements and expressions more than 1000 levels inside each "
                             "other (macro calls from deep inside macros), the render limit (hint: chat templates "
                             "come with the model files and are untrusted"));
  // Shallow recursion still stops at the macro call limit.
  EXPECT_THAT(error_of("{% macro r(n) %}{% if n %}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(300) }}"),
              HasSubstr("maximum macro recursion depth (200) exceeded in macro 'r'"));
  EXPECT_EQ(render("{% macro r(n) %}{% if n %}{{ r(n - 1) }}{% else %}ok{% endif %}{% endmacro %}{{ r(199) }}"), "ok");
  // A filter block's chain is applied by recursion too (innermost filter, and its arguments,
  // deepest), so it counts.
  const std::string filtered = "{% macro g(n) %}{% if n > 0 %}{% filter replace('y', g(n - 1))" + repeat("|lower", 240) +
                               " %}y{% endfilter %}{% else %}x{% endif %}{% endmacro %}";
  EXPECT_EQ(render(filtered + "{{ g(2) }}"), "x");
  EXPECT_THAT(error_of(filtered + "{{ g(150) }}"), HasSubstr("more than 1000 levels inside each other"));
}

TEST(JinjaDepth, ALongOneLineTemplateLexesInLinearTime) {
  // Columns were counted from the start of the line for every token: 150000 tokens after 4 MB
  // of text on one line took ~6 * 10^11 steps. They are counted on from the previous token.
  const std::string text = repeat("\xC3\xA9", 1 << 21);  // 2^21 'é': 4 MB, 2^21 columns
  const std::string tags = repeat("{{ 1 }}", 50000);
  EXPECT_EQ(render(text + tags).size(), text.size() + 50000);
  EXPECT_EQ(error_of(text + tags + "{{ 1 + }}"),
            "tmpl.jinja:1:" + std::to_string((1 << 21) + 50000 * 7 + 8) + ": expected an expression, got '}}'");
}
