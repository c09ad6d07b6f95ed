// Bad chat templates: each must fail with a tpro::Error naming the construct and its
// "<origin>:<line>:<col>" position (parse errors at construction, runtime errors at render),
// never render wrong text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/error.h"
#include "jinja/chat_template.h"

using namespace tpro;
using Json = nlohmann::ordered_json;

namespace {

const Json kContext = {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
                       {"add_generation_prompt", false}};

// The message of the Error that parsing or rendering `src` throws ("" if none is thrown).
std::string error_of(const std::string& src, const Json& ctx = kContext) {
  try {
    ChatTemplate t(src, "tmpl.jinja");
    std::string out = t.render(ctx);
    return "no error; rendered: " + out;
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

TEST(JinjaErrors, UnclosedBlocksNameTheBlockAndWhereItOpened) {
  EXPECT_EQ(error_of("line1\n{% if x %}\n  never closed"),
            "tmpl.jinja:2:4: unclosed 'if' block: expected 'elif', 'else' or 'endif' before the end of the template");
  EXPECT_EQ(error_of("{% for m in messages %}{{ m }}"),
            "tmpl.jinja:1:4: unclosed 'for' block: expected 'endfor' or 'else' before the end of the template");
  EXPECT_EQ(error_of("{% macro m() %}x"),
            "tmpl.jinja:1:4: unclosed 'macro' block: expected 'endmacro' before the end of the template");
  EXPECT_EQ(error_of("a\n\n{% set x %}abc"),
            "tmpl.jinja:3:4: unclosed 'set' block: expected 'endset' before the end of the template");
  EXPECT_EQ(error_of("{% filter upper %}abc"),
            "tmpl.jinja:1:4: unclosed 'filter' block: expected 'endfilter' before the end of the template");
  EXPECT_EQ(error_of("{% generation %}abc"),
            "tmpl.jinja:1:4: unclosed 'generation' block: expected 'endgeneration' before the end of the template");
  EXPECT_EQ(error_of("x {% raw %}abc"), "tmpl.jinja:1:3: missing end of raw directive '{% endraw %}'");
  EXPECT_EQ(error_of("x\n {# abc"), "tmpl.jinja:2:2: missing end of comment tag '#}'");
  EXPECT_EQ(error_of("{{ messages"), "tmpl.jinja:1:1: unexpected end of template, expected '}}' to close the tag");
  EXPECT_EQ(error_of("{% if true"), "tmpl.jinja:1:1: unexpected end of template, expected '%}' to close the tag");
}

TEST(JinjaErrors, MismatchedAndStrayEndTags) {
  EXPECT_EQ(error_of("{% for m in messages %}\n{{ m }}\n{% endif %}"),
            "tmpl.jinja:3:4: unexpected 'endif' tag: the innermost open block is 'for' from line 1, which expects "
            "'endfor' or 'else'");
  EXPECT_EQ(error_of("{% endfor %}"), "tmpl.jinja:1:4: unexpected 'endfor' tag: there is no open block to end");
  EXPECT_EQ(error_of("{% else %}"), "tmpl.jinja:1:4: unexpected 'else' tag: there is no open block to end");
}

TEST(JinjaErrors, UnknownFilterTestAndTag) {
  EXPECT_EQ(error_of("{{ 'a' }}\n{{ messages | frobnicate }}"), "tmpl.jinja:2:15: unknown filter 'frobnicate'");
  EXPECT_EQ(error_of("{% if messages is frobnicated %}{% endif %}"), "tmpl.jinja:1:19: unknown test 'frobnicated'");
  EXPECT_EQ(error_of("{{ messages | groupby('role') }}"),
            "tmpl.jinja:1:15: filter 'groupby' is a Jinja builtin that tpro does not implement (chat templates do not "
            "use it)");
  EXPECT_EQ(error_of("{% frob %}"), "tmpl.jinja:1:4: unknown tag 'frob'");
  EXPECT_EQ(error_of("{% include 'other.jinja' %}"),
            "tmpl.jinja:1:4: tag 'include' is not supported (hint: chat templates must be self-contained)");
  EXPECT_EQ(error_of("{% for x in messages recursive %}{% endfor %}"),
            "tmpl.jinja:1:22: recursive for loops are not supported");
  // Unknown filters outside conditionals are found at parse time even in code that never runs;
  // inside an if statement or an if expression they fail only when they run (as Jinja 3, whose
  // compiler defers them there: DeepSeek's templates use from_json in such a branch).
  EXPECT_EQ(error_of("{% for x in [] %}{{ x | nope }}{% endfor %}"), "tmpl.jinja:1:25: unknown filter 'nope'");
  EXPECT_EQ(error_of("{% if false %}{{ x | nope }}{% endif %}"), "no error; rendered: ");
  EXPECT_EQ(error_of("{% if true %}{{ 'x' | nope }}{% endif %}"), "tmpl.jinja:1:23: unknown filter 'nope'");
  EXPECT_EQ(error_of("{{ 'x' | nope if false else 'y' }}"), "no error; rendered: y");
  EXPECT_EQ(error_of("{{ 'y' if true else 'x' | nope }}"), "no error; rendered: y");
  EXPECT_EQ(error_of("{{ 'x' | nope if true else 'y' }}"), "tmpl.jinja:1:10: unknown filter 'nope'");
  EXPECT_EQ(error_of("{% if true %}{{ 'x' | groupby('a') }}{% endif %}"),
            "tmpl.jinja:1:23: filter 'groupby' is a Jinja builtin that tpro does not implement (chat templates do not "
            "use it)");
}

// As Jinja's select/reject/map (`if value:`): none, false and undefined give an empty sequence.
TEST(JinjaErrors, SelectAndMapOnNoneGiveNothing) {
  EXPECT_EQ(error_of("{{ none | selectattr('a') | list }}"), "no error; rendered: []");
  EXPECT_EQ(error_of("{{ none | rejectattr('a', 'defined') | list | length }}"), "no error; rendered: 0");
  EXPECT_EQ(error_of("{{ missing | select | list }}"), "no error; rendered: []");
  EXPECT_EQ(error_of("{{ none | map(attribute='a') | list }}"), "no error; rendered: []");
  EXPECT_THAT(error_of("{{ 3 | selectattr('a') | list }}"), ::testing::HasSubstr("tmpl.jinja:1:"));
}

TEST(JinjaErrors, BadSyntax) {
  EXPECT_EQ(error_of("{{ 1 + }}"), "tmpl.jinja:1:8: expected an expression, got '}}'");
  EXPECT_EQ(error_of("{% if %}{% endif %}"), "tmpl.jinja:1:7: expected an expression, got '%}'");
  EXPECT_EQ(error_of("{{ (1, 2 ] }}"), "tmpl.jinja:1:10: unexpected ']', expected ')'");
  EXPECT_EQ(error_of("{{ 'unterminated }}"), "tmpl.jinja:1:4: unterminated string literal");
  EXPECT_EQ(error_of("{{ @ }}"), "tmpl.jinja:1:4: unexpected character '@' in tag");
  EXPECT_EQ(error_of("{% for in messages %}{% endfor %}"), "tmpl.jinja:1:11: expected 'in', got 'messages'");
  EXPECT_EQ(error_of("{% set 1 = 2 %}"), "tmpl.jinja:1:8: expected a name, got number 1");
  EXPECT_EQ(error_of("{% break %}"), "tmpl.jinja:1:4: 'break' outside of a for loop");
  EXPECT_EQ(error_of("{{ f(a=1, 2) }}"), "tmpl.jinja:1:11: positional argument follows keyword argument");
  EXPECT_EQ(error_of("{% macro m(a=1, b) %}{% endmacro %}"),
            "tmpl.jinja:1:17: non-default argument 'b' follows default argument");
  EXPECT_EQ(error_of("{{ '\\xZ' }}"), "tmpl.jinja:1:4: truncated \\x escape in string literal");
  EXPECT_EQ(error_of("{{ 99999999999999999999 }}"),
            "tmpl.jinja:1:4: integer literal 99999999999999999999 is too large (tpro's Jinja uses 64-bit integers)");
}

TEST(JinjaErrors, CallingNonCallablesAndUndefined) {
  EXPECT_EQ(error_of("{{ messages[0].role() }}"), "tmpl.jinja:1:16: 'str' object is not callable");
  EXPECT_EQ(error_of("{{ add_generation_prompt() }}"), "tmpl.jinja:1:4: 'bool' object is not callable");
  EXPECT_EQ(error_of("{{ nothing() }}"), "tmpl.jinja:1:4: 'nothing' is undefined");
  EXPECT_EQ(error_of("{{ nothing.attr }}"), "tmpl.jinja:1:12: 'nothing' is undefined");
  EXPECT_EQ(error_of("\n{{ messages[0].missing.deeper }}"),
            "tmpl.jinja:2:24: 'dict object' has no attribute 'missing'");
  EXPECT_EQ(error_of("{{ messages[5] + 1 }}"), "tmpl.jinja:1:16: list object has no element 5");
  // Undefined is fine where Jinja allows it: printing, tests, default, iteration, `in`.
  EXPECT_EQ(error_of("[{{ nothing }}{{ nothing is defined }}{{ nothing | default('d') }}{% for x in nothing %}x{% "
                     "endfor %}{{ 'a' in nothing }}]"),
            "no error; rendered: [FalsedFalse]");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplateMessage) {
  EXPECT_EQ(error_of("{% if messages[0].role != 'system' %}\n  {{ raise_exception('System message required') }}\n{% "
                     "endif %}"),
            "tmpl.jinja:2:6: raise_exception: System message required");
}

TEST(JinjaErrors, RuntimeTypeErrors) {
  EXPECT_EQ(error_of("{% set s = 'str' %}{% set s.attr = 1 %}"),
            "tmpl.jinja:1:23: cannot assign attribute on non-namespace object 's' (a str; hint: create it with "
            "namespace())");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "tmpl.jinja:1:8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 'abc'.upper(1) }}"), "tmpl.jinja:1:10: upper() takes at most 0 arguments (1 given)");
  EXPECT_EQ(error_of("{{ 'abc' | replace('a') }}"), "tmpl.jinja:1:12: replace() missing required argument 'new'");
  EXPECT_EQ(error_of("{{ messages | tojson(bogus=1) }}"),
            "tmpl.jinja:1:15: tojson() got an unexpected keyword argument 'bogus'");
  EXPECT_EQ(error_of("{{ x | tojson }}"), "tmpl.jinja:1:8: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(error_of("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}"),
            "tmpl.jinja:1:41: macro 'm' takes not more than 1 argument(s)");
  EXPECT_EQ(error_of("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}"),
            "tmpl.jinja:1:41: macro 'm' takes no keyword argument 'b'");
  EXPECT_EQ(error_of("{% macro r(n) %}{{ r(n) }}{% endmacro %}{{ r(1) }}"),
            "tmpl.jinja:1:20: maximum macro recursion depth (200) exceeded in macro 'r'");
  EXPECT_EQ(error_of("{{ range(1000000) | length }}"),
            "tmpl.jinja:1:4: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  EXPECT_EQ(error_of("{{ 1 / 0 }}"), "tmpl.jinja:1:6: division by zero");
  EXPECT_EQ(error_of("{{ 9223372036854775807 + 1 }}"),
            "tmpl.jinja:1:24: integer overflow (tpro's Jinja uses 64-bit integers)");
  EXPECT_EQ(error_of("{{ [1, 'a'] | sort }}"),
            "tmpl.jinja:1:15: '<' not supported between instances of 'str' and 'int'");
  EXPECT_EQ(error_of("{% for a, b in [1, 2] %}{% endfor %}"), "tmpl.jinja:1:4: cannot unpack non-iterable int object");
  EXPECT_EQ(error_of("{{ messages.append(1) }}"),
            "tmpl.jinja:1:13: access to attribute 'append' of 'list' object is unsafe (hint: templates cannot modify "
            "values; build a new one with + or use namespace())");
  EXPECT_EQ(error_of("{{ 'a' * 100000000 }}"),
            "tmpl.jinja:1:8: string repetition would make a string of 100000000 bytes, over the limit of 67108864 "
            "bytes (hint: chat templates come with the model files and are untrusted, so a render is bounded; real "
            "chat templates stay far below this)");
}

TEST(JinjaErrors, BadContextAndConfig) {
  ChatTemplate t("{{ messages }}", "tmpl.jinja");
  EXPECT_THROW(
      {
        try {
          t.render(Json::array());
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "tmpl.jinja: the chat template context must be a JSON object, got array");
          throw;
        }
      },
      Error);
  EXPECT_THROW(t.apply(Json::object(), true), Error);
  Json named = Json::array({{{"name", "default"}, {"template", "D"}}, {{"name", "tool_use"}, {"template", "T"}}});
  EXPECT_EQ(test::error_of([&] { select_chat_template(named, "rag", "cfg.json"); }),
            "cfg.json: no chat template named 'rag' (available: 'default', 'tool_use')");
  EXPECT_EQ(test::error_of([&] { select_chat_template(Json(42), "default", "cfg.json"); }),
            "cfg.json: chat_template must be a string or a list of {\"name\", \"template\"}, got number");
}
