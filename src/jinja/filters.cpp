// Jinja's builtin filters and tests, with jinja2/filters.py and tests.py semantics (argument
// names and defaults included), plus transformers' tojson override: json.dumps(x,
// ensure_ascii=False, indent=None, separators=None, sort_keys=False), no HTML escaping.
// Not provided (an error at parse time names them): groupby, slice, random, pprint, urlize,
// urlencode, xmlattr, filesizeformat, striptags, wordwrap.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "jinja/builtins.h"
#include "jinja/limits.h"
#include "jinja/text.h"

namespace tpro::jinja {

namespace {

bool flag(const std::optional<Value>& v, bool dflt = false) { return v ? v->truthy() : dflt; }

int64_t length_of(const Value& v) {
  switch (v.type()) {
    case Type::Undefined: return 0;
    case Type::String: return static_cast<int64_t>(utf8_length(v.as_string()));
    case Type::List: case Type::Tuple: case Type::View: return static_cast<int64_t>(v.as_list().size());
    case Type::Dict:
      if (v.is_mapping()) return static_cast<int64_t>(v.as_dict().items.size());
      break;
    default: break;
  }
  jinja_fail("object of type '", v.type_name(), "' has no len()");
}

Value ignore_case(const Value& v) { return v.is_string() ? Value(py_lower(v.as_string())) : v; }

// Jinja's make_attrgetter: the item itself, or the value at an "a.b"/"0" attribute path.
Value key_of(const Value& item, const std::optional<Value>& attribute, bool case_sensitive) {
  Value k = (attribute && !attribute->is_none()) ? get_attr_path(item, *attribute) : item;
  return case_sensitive ? k : ignore_case(k);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

Value f_tojson(const Value& v, CallArgs& a) {
  auto args = bind_args("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opt;
  opt.ensure_ascii = flag(args[0]);
  if (args[1] && !args[1]->is_none()) {
    if (args[1]->is_string()) {
      opt.indent = args[1]->as_string();
    } else if (args[1]->is_number() && !args[1]->is_float()) {
      int64_t width = std::max<int64_t>(args[1]->as_int(), 0);
      check_string(uint64_t(width), "tojson indent");
      opt.indent = std::string(static_cast<size_t>(width), ' ');
    } else {
      jinja_fail("tojson indent must be an int or a str, not ", args[1]->type_name());
    }
  }
  if (args[2] && !args[2]->is_none()) {
    const Value& s = *args[2];
    if (!s.is_list() || s.as_list().size() != 2 || !s.as_list()[0].is_string() || !s.as_list()[1].is_string()) {
      jinja_fail("tojson separators must be a pair of strings, e.g. (',', ': ')");
    }
    opt.separators = std::make_pair(s.as_list()[0].as_string(), s.as_list()[1].as_string());
  }
  opt.sort_keys = flag(args[3]);
  return Value(json_dumps(v, opt));
}

Value f_default(const Value& v, CallArgs& a) {
  auto args = bind_args("default", a, {"default_value", "boolean"});
  if (v.is_undefined() || (flag(args[1]) && !v.truthy())) return args[0] ? *args[0] : Value("");
  return v;
}

Value f_join(const Value& v, CallArgs& a) {
  auto args = bind_args("join", a, {"d", "attribute"});
  std::string sep = args[0] ? args[0]->str() : "", out;
  size_t i = 0;
  for (const Value& item : iterate(v)) {
    if (i++) out += sep;
    out += (args[1] && !args[1]->is_none() ? get_attr_path(item, *args[1]) : item).str();
    check_string(out.size(), "join");  // items may repeat one big string: check as it grows
  }
  return Value(std::move(out));
}

Value f_first_last(const Value& v, bool last) {
  if (v.is_iterator()) {
    if (last) jinja_fail("'", v.type_name(), "' object is not reversible");
    IterState& st = v.as_iter();  // next(iter(gen)) takes one item
    if (st.pos < st.items.size()) return st.items[st.pos++];
    return Value::undefined("No first item, sequence was empty.");
  }
  List items = iterate(v);
  if (items.empty()) return Value::undefined(cat("No ", last ? "last" : "first", " item, sequence was empty."));
  return last ? items.back() : items.front();
}

Value f_items(const Value& v, CallArgs& a) {
  bind_args("items", a, {});
  if (v.is_undefined()) return Value::iterator({});
  if (!v.is_mapping()) jinja_fail("Can only get item pairs from a mapping.");
  List out;
  for (const auto& kv : v.as_dict().items) out.push_back(Value::tuple({kv.first, kv.second}));
  return Value::iterator(std::move(out));
}

Value f_dictsort(const Value& v, CallArgs& a) {
  auto args = bind_args("dictsort", a, {"case_sensitive", "by", "reverse"});
  std::string by = args[1] ? args[1]->str() : "key";
  if (by != "key" && by != "value") jinja_fail("You can only sort by either \"key\" or \"value\"");
  CallArgs none;
  List items = iterate(f_items(v, none));
  size_t pos = by == "key" ? 0 : 1;
  bool cs = flag(args[0]), rev = flag(args[2]);
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    Value kx = key_of(x.as_list()[pos], std::nullopt, cs), ky = key_of(y.as_list()[pos], std::nullopt, cs);
    return rev ? py_compare(ky, kx) < 0 : py_compare(kx, ky) < 0;
  });
  return Value::list(std::move(items));
}

Value f_sort(const Value& v, CallArgs& a) {
  auto args = bind_args("sort", a, {"reverse", "case_sensitive", "attribute"});
  List items = iterate(v);
  bool rev = flag(args[0]), cs = flag(args[1]);
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    Value kx = key_of(x, args[2], cs), ky = key_of(y, args[2], cs);
    return rev ? py_compare(ky, kx) < 0 : py_compare(kx, ky) < 0;
  });
  return Value::list(std::move(items));
}

Value f_unique(const Value& v, CallArgs& a) {
  auto args = bind_args("unique", a, {"case_sensitive", "attribute"});
  List out, seen;
  for (const Value& item : iterate(v)) {
    Value k = key_of(item, args[1], flag(args[0]));
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, k); })) {
      seen.push_back(k);
      out.push_back(item);
    }
  }
  return Value::iterator(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  auto args = bind_args(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  List items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    int c = py_compare(key_of(items[i], args[1], flag(args[0])), key_of(items[best], args[1], flag(args[0])));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

Value f_sum(const Value& v, CallArgs& a) {
  auto args = bind_args("sum", a, {"attribute", "start"});
  Value total = args[1] ? *args[1] : Value(int64_t{0});
  for (const Value& item : iterate(v)) total = binary_op("+", total, key_of(item, args[0], true));
  return total;
}

Value call_filter(const std::string& name, const Value& item, const CallArgs& rest) {
  FilterFn f = find_filter(name);
  if (!f) jinja_fail("unknown filter '", name, "'");
  CallArgs copy = rest;
  return f(item, copy);
}

Value f_map(const Value& v, CallArgs& a) {
  List out;
  if (!v.truthy()) return Value::iterator(std::move(out));  // as Jinja's `if value:`: none maps to nothing
  if (a.pos.empty()) {
    auto args = bind_args("map", a, {"attribute", "default"});
    if (!args[0]) jinja_fail("map requires a filter argument");
    const Value* dflt = args[1] && !args[1]->is_none() ? &*args[1] : nullptr;
    for (const Value& item : iterate(v)) out.push_back(get_attr_path(item, *args[0], dflt));
    return Value::iterator(std::move(out));
  }
  if (!a.pos[0].is_string()) jinja_fail("map filter name must be a string, not ", a.pos[0].type_name());
  std::string name = a.pos[0].as_string();
  CallArgs rest{List(a.pos.begin() + 1, a.pos.end()), a.kw};
  for (const Value& item : iterate(v)) out.push_back(call_filter(name, item, rest));
  return Value::iterator(std::move(out));
}

// select / reject / selectattr / rejectattr.
Value select_impl(const Value& v, CallArgs& a, bool attr, bool keep) {
  size_t off = attr ? 1 : 0;
  if (attr && a.pos.empty()) jinja_fail("Missing parameter for attribute name");
  TestFn test = nullptr;
  if (a.pos.size() > off) {
    if (!a.pos[off].is_string()) jinja_fail("test name must be a string, not ", a.pos[off].type_name());
    test = find_test(a.pos[off].as_string());
    if (!test) jinja_fail("unknown test '", a.pos[off].as_string(), "'");
  }
  CallArgs rest{a.pos.size() > off + 1 ? List(a.pos.begin() + off + 1, a.pos.end()) : List{}, a.kw};
  List out;
  if (!v.truthy()) return Value::iterator(std::move(out));  // as Jinja's `if value:`: none selects nothing
  for (const Value& item : iterate(v)) {
    Value x = attr ? get_attr_path(item, a.pos[0]) : item;
    CallArgs copy = rest;
    bool ok = test ? test(x, copy) : x.truthy();
    if (ok == keep) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_indent(const Value& v, CallArgs& a) {
  auto args = bind_args("indent", a, {"width", "first", "blank"});
  std::string ind = "    ";
  if (args[0] && args[0]->is_string()) {
    ind = args[0]->as_string();
  } else if (args[0]) {
    int64_t width = std::max<int64_t>(args[0]->as_int(), 0);
    check_string(uint64_t(width), "indent width");
    ind = std::string(static_cast<size_t>(width), ' ');
  }
  std::vector<std::string> lines = py_splitlines(v.str() + "\n", false);
  std::string out;
  bool blank = flag(args[2]);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if (i > 0 && (blank || !lines[i].empty())) out += ind;  // blank lines stay empty unless blank=True
    out += lines[i];
    check_string(out.size() + ind.size(), "indent");
  }
  return Value(flag(args[1]) ? ind + out : out);
}

// Python float(str): surrounding whitespace, underscores between digits, inf/nan words.
std::optional<double> parse_py_float(const std::string& s) {
  std::string t = py_strip(s, std::nullopt, true, true), clean;
  for (size_t i = 0; i < t.size(); ++i) {
    bool between_digits = t[i] == '_' && i > 0 && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
                          std::isdigit(static_cast<unsigned char>(t[i + 1]));
    if (!between_digits) clean.push_back(t[i]);
  }
  if (clean.empty() || clean.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return d;
}

Value f_int(const Value& v, CallArgs& a) {
  auto args = bind_args("int", a, {"default", "base"});
  Value dflt = args[0] ? *args[0] : Value(int64_t{0});
  if (v.is_undefined()) jinja_fail(v.undefined_hint());
  if (v.is_number()) return v.is_float() ? Value(static_cast<int64_t>(std::trunc(v.as_float()))) : Value(v.as_int());
  if (!v.is_string()) return dflt;
  std::string t = py_strip(v.as_string(), std::nullopt, true, true), clean;
  for (char c : t) {
    if (c != '_') clean.push_back(c);
  }
  int base = static_cast<int>(args[1] ? args[1]->as_int() : 10);
  char* end = nullptr;
  errno = 0;
  long long i = clean.empty() ? 0 : std::strtoll(clean.c_str(), &end, base);
  if (!clean.empty() && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(i));
  std::optional<double> d = parse_py_float(v.as_string());
  if (d && std::isfinite(*d)) return Value(static_cast<int64_t>(std::trunc(*d)));
  return dflt;
}

Value f_float(const Value& v, CallArgs& a) {
  auto args = bind_args("float", a, {"default"});
  if (v.is_undefined()) jinja_fail(v.undefined_hint());
  if (v.is_number()) return Value(v.as_float());
  std::optional<double> d = v.is_string() ? parse_py_float(v.as_string()) : std::nullopt;
  return d ? Value(*d) : args[0] ? *args[0] : Value(0.0);
}

Value f_round(const Value& v, CallArgs& a) {
  auto args = bind_args("round", a, {"precision", "method"});
  int64_t prec = args[0] ? args[0]->as_int() : 0;
  std::string method = args[1] ? args[1]->str() : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    jinja_fail("method must be common, ceil or floor");
  }
  if (!v.is_number()) jinja_fail("type ", v.type_name(), " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) return Value(v.as_int());  // round(int, n) stays an int
    if (prec < 0 || prec > 300) return Value(std::nearbyint(v.as_float() * std::pow(10.0, prec)) / std::pow(10.0, prec));
    char buf[512];  // glibc prints the correctly rounded decimal, ties to even, like CPython's round()
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec), v.as_float());
    return Value(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(prec));
  double x = v.as_float() * scale;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_reverse(const Value& v, CallArgs& a) {
  bind_args("reverse", a, {});
  if (v.is_string()) {
    std::u32string u = utf8_decode(v.as_string());
    return Value(utf8_encode(std::u32string(u.rbegin(), u.rend())));
  }
  bool reversible = v.is_list() || v.is_view() || v.is_mapping();  // else Python reverses list(value)
  List items = iterate(v);
  List rev(items.rbegin(), items.rend());
  return reversible ? Value::iterator(std::move(rev), v.is_mapping() ? "dict_reversekeyiterator" : "reverseiterator")
                    : Value::list(std::move(rev));
}

Value f_truncate(const Value& v, CallArgs& a) {
  auto args = bind_args("truncate", a, {"length", "killwords", "end", "leeway"});
  std::u32string s = utf8_decode(v.str());
  int64_t length = args[0] ? args[0]->as_int() : 255, leeway = args[3] ? args[3]->as_int() : 5;
  std::string end = args[2] ? args[2]->str() : "...";
  int64_t end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len) jinja_fail("expected length >= ", end_len, ", got ", length);
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value(utf8_encode(s));
  std::string head = utf8_encode(s.substr(0, static_cast<size_t>(length - end_len)));
  if (flag(args[1])) return Value(head + end);
  return Value(py_split(head, std::string(" "), 1, true)[0] + end);
}

Value f_batch(const Value& v, CallArgs& a) {
  auto args = bind_args("batch", a, {"linecount", "fill_with"}, 1);
  int64_t n = args[0]->as_int();
  if (n <= 0) jinja_fail("batch linecount must be positive");
  List out, cur;
  for (const Value& item : iterate(v)) {
    if (static_cast<int64_t>(cur.size()) == n) out.push_back(Value::list(std::move(cur))), cur.clear();
    cur.push_back(item);
  }
  if (!cur.empty()) {
    while (args[1] && !args[1]->is_none() && static_cast<int64_t>(cur.size()) < n) cur.push_back(*args[1]);
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::iterator(std::move(out));
}

Value f_format(const Value& v, CallArgs& a) {
  if (!a.pos.empty() && !a.kw.empty()) jinja_fail("can't handle positional and keyword arguments at the same time");
  if (a.kw.empty()) return Value(percent_format(v.str(), Value::tuple(a.pos)));
  auto d = make_dict();
  for (auto& kv : a.kw) d->set(Value(kv.first), kv.second);
  return Value(percent_format(v.str(), Value::dict(d)));
}

Value f_wordcount(const Value& v, CallArgs& a) {
  bind_args("wordcount", a, {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(v.str())) {
    bool w = py_isalpha(c) || py_isdigit(c) || c == '_';
    n += (w && !in_word) ? 1 : 0;
    in_word = w;
  }
  return Value(n);
}

// Jinja's title filter: capitalise each run after '-', whitespace or an opening bracket.
std::string jinja_title(const std::string& s) {
  std::u32string u = utf8_decode(s);
  bool start = true;
  for (char32_t& c : u) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
    if (sep) {
      start = true;
    } else {
      c = start ? py_toupper(c) : py_tolower(c);
      start = false;
    }
  }
  return utf8_encode(u);
}

#define SIMPLE(fn_name, expr)                    \
  [](const Value& v, CallArgs& a) -> Value {     \
    bind_args(fn_name, a, {});                   \
    return expr;                                 \
  }

const std::map<std::string, FilterFn, std::less<>>& filters() {
  static const std::map<std::string, FilterFn, std::less<>> m = {
      {"tojson", f_tojson},
      {"default", f_default},
      {"d", f_default},
      {"length", SIMPLE("length", Value(length_of(v)))},
      {"count", SIMPLE("count", Value(length_of(v)))},
      {"string", SIMPLE("string", Value(v.str()))},
      {"safe", SIMPLE("safe", v)},
      {"escape", SIMPLE("escape", Value(html_escape(v.str())))},
      {"e", SIMPLE("e", Value(html_escape(v.str())))},
      {"forceescape", SIMPLE("forceescape", Value(html_escape(v.str())))},
      {"upper", SIMPLE("upper", Value(py_upper(v.str())))},
      {"lower", SIMPLE("lower", Value(py_lower(v.str())))},
      {"capitalize", SIMPLE("capitalize", Value(py_capitalize(v.str())))},
      {"title", SIMPLE("title", Value(jinja_title(v.str())))},
      {"list", SIMPLE("list", Value::list(iterate(v)))},
      {"first", SIMPLE("first", f_first_last(v, false))},
      {"last", SIMPLE("last", f_first_last(v, true))},
      {"wordcount", f_wordcount},
      {"abs", [](const Value& v, CallArgs& a) -> Value {
         bind_args("abs", a, {});
         if (!v.is_number()) jinja_fail("bad operand type for abs(): '", v.type_name(), "'");
         return v.is_float() ? Value(std::fabs(v.as_float())) : binary_op("*", v, Value(v.as_int() < 0 ? -1 : 1));
       }},
      {"trim", [](const Value& v, CallArgs& a) {
         auto args = bind_args("trim", a, {"chars"});
         std::optional<std::string> chars;
         if (args[0] && !args[0]->is_none()) chars = args[0]->str();
         return Value(py_strip(v.str(), chars, true, true));
       }},
      {"replace", [](const Value& v, CallArgs& a) {
         auto args = bind_args("replace", a, {"old", "new", "count"}, 2);
         int64_t count = args[2] && !args[2]->is_none() ? args[2]->as_int() : -1;
         return Value(py_replace(v.str(), args[0]->str(), args[1]->str(), count));
       }},
      {"center", [](const Value& v, CallArgs& a) {
         auto args = bind_args("center", a, {"width"});
         CallArgs inner{{args[0] ? *args[0] : Value(int64_t{80})}, {}};
         return method_of(Value(v.str()), "center").as_callable().fn(inner);
       }},
      {"join", f_join},
      {"items", f_items},
      {"dictsort", f_dictsort},
      {"sort", f_sort},
      {"unique", f_unique},
      {"min", [](const Value& v, CallArgs& a) { return min_max(v, a, false); }},
      {"max", [](const Value& v, CallArgs& a) { return min_max(v, a, true); }},
      {"sum", f_sum},
      {"map", f_map},
      {"select", [](const Value& v, CallArgs& a) { return select_impl(v, a, false, true); }},
      {"reject", [](const Value& v, CallArgs& a) { return select_impl(v, a, false, false); }},
      {"selectattr", [](const Value& v, CallArgs& a) { return select_impl(v, a, true, true); }},
      {"rejectattr", [](const Value& v, CallArgs& a) { return select_impl(v, a, true, false); }},
      {"indent", f_indent},
      {"int", f_int},
      {"float", f_float},
      {"round", f_round},
      {"reverse", f_reverse},
      {"truncate", f_truncate},
      {"batch", f_batch},
      {"format", f_format},
      {"attr", [](const Value& v, CallArgs& a) {
         auto args = bind_args("attr", a, {"name"}, 1);
         std::string name = args[0]->str();
         if (v.is_mapping()) return method_of(v, name);  // getattr only: dict keys are not attributes
         return get_attr(v, name);
       }},
  };
  return m;
}
#undef SIMPLE

// ---- tests ----

bool cmp_test(const Value& v, CallArgs& a, const char* name, int want_lo, int want_hi) {
  auto args = bind_args(name, a, {"other"}, 1);
  int c = py_compare(v, *args[0], name);
  return c >= want_lo && c <= want_hi;
}

bool parity(const Value& v, CallArgs& a, const char* name, int64_t rem) {
  bind_args(name, a, {});
  if (v.is_undefined()) jinja_fail(v.undefined_hint());
  if (!v.is_number()) jinja_fail("unsupported operand type(s) for %: '", v.type_name(), "' and 'int'");
  if (v.is_float()) return std::fabs(std::fmod(v.as_float(), 2.0)) == static_cast<double>(rem);
  int64_t m = v.as_int() % 2;
  return (m < 0 ? -m : m) == rem;
}

bool str_case_test(const Value& v, bool upper) {
  bool cased = false;
  for (char32_t c : utf8_decode(v.str())) {
    if (upper ? py_islower(c) : py_isupper(c)) return false;
    cased = cased || py_isupper(c) || py_islower(c);
  }
  return cased;
}

#define TEST(fn_name, expr)                  \
  [](const Value& v, CallArgs& a) -> bool {  \
    bind_args(fn_name, a, {});               \
    return expr;                             \
  }
#define TEST1(fn_name, expr)                                  \
  [](const Value& v, CallArgs& a) -> bool {                   \
    auto args = bind_args(fn_name, a, {"other"}, 1);          \
    const Value& o = *args[0];                                \
    return expr;                                              \
  }

const std::map<std::string, TestFn, std::less<>>& tests() {
  static const std::map<std::string, TestFn, std::less<>> m = {
      {"defined", TEST("defined", !v.is_undefined())},
      {"undefined", TEST("undefined", v.is_undefined())},
      {"none", TEST("none", v.is_none())},
      {"boolean", TEST("boolean", v.is_bool())},
      {"true", TEST("true", v.is_bool() && v.as_bool())},
      {"false", TEST("false", v.is_bool() && !v.as_bool())},
      {"integer", TEST("integer", v.is_int())},
      {"float", TEST("float", v.is_float())},
      {"number", TEST("number", v.is_number())},
      {"string", TEST("string", v.is_string())},
      {"mapping", TEST("mapping", v.is_mapping())},
      {"iterable", TEST("iterable", v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping() ||
                                    v.is_view() || v.is_iterator())},
      {"sequence", TEST("sequence", v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping() ||
                                    (v.is_view() && v.view_kind() == ViewKind::Range))},
      {"callable", TEST("callable", v.is_callable())},
      {"escaped", TEST("escaped", false)},
      {"lower", TEST("lower", str_case_test(v, false))},
      {"upper", TEST("upper", str_case_test(v, true))},
      {"odd", [](const Value& v, CallArgs& a) { return parity(v, a, "odd", 1); }},
      {"even", [](const Value& v, CallArgs& a) { return parity(v, a, "even", 0); }},
      {"divisibleby", TEST1("divisibleby", binary_op("%", v, o).truthy() == false)},
      {"eq", TEST1("eq", py_equal(v, o))},
      {"equalto", TEST1("equalto", py_equal(v, o))},
      {"==", TEST1("==", py_equal(v, o))},
      {"ne", TEST1("ne", !py_equal(v, o))},
      {"!=", TEST1("!=", !py_equal(v, o))},
      {"sameas", TEST1("sameas", v.same_object(o))},
      {"in", TEST1("in", contains(o, v))},
      {"lt", [](const Value& v, CallArgs& a) { return cmp_test(v, a, "<", -1, -1); }},
      {"<", [](const Value& v, CallArgs& a) { return cmp_test(v, a, "<", -1, -1); }},
      {"lessthan", [](const Value& v, CallArgs& a) { return cmp_test(v, a, "<", -1, -1); }},
      {"le", [](const Value& v, CallArgs& a) { return cmp_test(v, a, "<=", -1, 0); }},
      {"<=", [](const Value& v, CallArgs& a) { return cmp_test(v, a, "<=", -1, 0); }},
      {"gt", [](const Value& v, CallArgs& a) { return cmp_test(v, a, ">", 1, 1); }},
      {">", [](const Value& v, CallArgs& a) { return cmp_test(v, a, ">", 1, 1); }},
      {"greaterthan", [](const Value& v, CallArgs& a) { return cmp_test(v, a, ">", 1, 1); }},
      {"ge", [](const Value& v, CallArgs& a) { return cmp_test(v, a, ">=", 0, 1); }},
      {">=", [](const Value& v, CallArgs& a) { return cmp_test(v, a, ">=", 0, 1); }},
      {"filter", TEST("filter", v.is_string() && find_filter(v.as_string()) != nullptr)},
      {"test", TEST("test", v.is_string() && find_test(v.as_string()) != nullptr)},
  };
  return m;
}
#undef TEST
#undef TEST1

}  // namespace

FilterFn find_filter(std::string_view name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

std::string unsupported_filter_reason(std::string_view name) {
  static const std::vector<std::string_view> kJinja = {"groupby", "slice", "random", "pprint", "urlize",
                                                       "urlencode", "xmlattr", "filesizeformat", "striptags",
                                                       "wordwrap"};
  if (std::find(kJinja.begin(), kJinja.end(), name) == kJinja.end()) return "";
  return cat("filter '", name, "' is a Jinja builtin that tpro does not implement (chat templates do not use it)");
}

}  // namespace tpro::jinja
