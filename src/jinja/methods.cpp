// Python methods of str, dict, list and tuple values as templates call them (x.strip(),
// m.get('k'), s.split('</think>')[0], '{} {}'.format(a, b)), printf-style `%` formatting, and
// the global functions range/namespace/dict/joiner. Mutating methods (list.append, dict.pop,
// ...) raise the same "unsafe" error as transformers' ImmutableSandboxedEnvironment.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "jinja/builtins.h"
#include "jinja/limits.h"
#include "jinja/text.h"

namespace tpro::jinja {

namespace {

using Method = Value (*)(const Value& self, CallArgs& a);

const std::string& str_arg(const std::optional<Value>& v, std::string_view fn, std::string_view what = "argument") {
  if (!v || !v->is_string()) {
    jinja_fail(fn, "() ", what, " must be str, not ", v ? v->type_name() : std::string("missing"));
  }
  return v->as_string();
}

std::optional<std::string> opt_str(const std::optional<Value>& v, std::string_view fn) {
  if (!v || v->is_none()) return std::nullopt;
  return str_arg(v, fn);
}

int64_t int_arg(const std::optional<Value>& v, std::string_view fn, int64_t dflt) {
  if (!v) return dflt;
  if (!v->is_number() || v->is_float()) jinja_fail(fn, "() expected an integer, got ", v->type_name());
  return v->as_int();
}

Value str_list(std::vector<std::string> parts) {
  List out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::list(std::move(out));
}

#define STR_NOARG(fn_name, expr)                                \
  [](const Value& self, CallArgs& a) -> Value {                 \
    bind_args(fn_name, a, {});                                  \
    const std::string& s = self.as_string();                    \
    return Value(expr);                                         \
  }

Value str_strip_impl(const Value& self, CallArgs& a, const char* fn, bool left, bool right) {
  auto args = bind_args(fn, a, {"chars"});
  return Value(py_strip(self.as_string(), opt_str(args[0], fn), left, right));
}

Value str_split_impl(const Value& self, CallArgs& a, const char* fn, bool from_right) {
  auto args = bind_args(fn, a, {"sep", "maxsplit"});
  return str_list(py_split(self.as_string(), opt_str(args[0], fn), int_arg(args[1], fn, -1), from_right));
}

Value str_affix(const Value& self, CallArgs& a, const char* fn, bool prefix) {
  auto args = bind_args(fn, a, {"affix"}, 1);
  const std::string& s = self.as_string();
  auto test = [&](const Value& v) {
    if (!v.is_string()) jinja_fail(fn, "() arguments must be str or a tuple of str, not ", v.type_name());
    const std::string& x = v.as_string();
    return x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0);
  };
  if (args[0]->is_list()) {
    return Value(std::any_of(args[0]->as_list().begin(), args[0]->as_list().end(), test));
  }
  return Value(test(*args[0]));
}

Value str_pad(const Value& self, CallArgs& a, const char* fn, int align) {  // -1 ljust, 0 center, 1 rjust
  auto args = bind_args(fn, a, {"width", "fillchar"}, 1);
  int64_t width = int_arg(args[0], fn, 0);
  std::string fill = args[1] ? str_arg(args[1], fn) : " ";
  if (utf8_length(fill) != 1) jinja_fail(fn, "() the fill character must be exactly one character long");
  int64_t n = static_cast<int64_t>(utf8_length(self.as_string()));
  if (width <= n) return self;
  int64_t pad = width - n;
  check_string(uint64_t(pad) * fill.size() + self.as_string().size(), std::string(fn) + "() width");
  // CPython's center puts the odd extra space on the right unless the length is odd.
  int64_t left = align < 0 ? 0 : align > 0 ? pad : pad / 2 + (pad & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += self.as_string();
  for (int64_t i = 0; i < pad - left; ++i) out += fill;
  return Value(std::move(out));
}

Value str_find_impl(const Value& self, CallArgs& a, const char* fn, bool from_right, bool raise) {
  auto args = bind_args(fn, a, {"sub"}, 1);
  int64_t at = py_find(self.as_string(), str_arg(args[0], fn), from_right);
  if (at < 0 && raise) jinja_fail("substring not found");
  return Value(at);
}

Value str_join(const Value& self, CallArgs& a) {
  auto args = bind_args("join", a, {"iterable"}, 1);
  std::string out;
  size_t i = 0;
  for (const Value& v : iterate(*args[0])) {
    if (!v.is_string()) jinja_fail("sequence item ", i, ": expected str instance, ", v.type_name(), " found");
    if (i++) out += self.as_string();
    out += v.as_string();
  }
  return Value(std::move(out));
}

Value str_partition(const Value& self, CallArgs& a, const char* fn, bool from_right) {
  auto args = bind_args(fn, a, {"sep"}, 1);
  const std::string& s = self.as_string();
  const std::string& sep = str_arg(args[0], fn);
  if (sep.empty()) jinja_fail("empty separator");
  size_t at = from_right ? s.rfind(sep) : s.find(sep);
  if (at == std::string::npos) {
    return from_right ? Value::tuple({Value(""), Value(""), self}) : Value::tuple({self, Value(""), Value("")});
  }
  return Value::tuple({Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))});
}

template <typename Pred>
bool all_chars(const std::string& s, Pred p) {
  std::u32string u = utf8_decode(s);
  return !u.empty() && std::all_of(u.begin(), u.end(), p);
}

Value str_is_case(const std::string& s, bool upper) {
  bool cased = false;
  for (char32_t c : utf8_decode(s)) {
    if (upper ? py_islower(c) : py_isupper(c)) return Value(false);
    cased = cased || py_isupper(c) || py_islower(c);
  }
  return Value(cased);
}

std::string str_format(const std::string& fmt, CallArgs& a);

const std::map<std::string, Method, std::less<>>& str_methods() {
  static const std::map<std::string, Method, std::less<>> m = {
      {"upper", STR_NOARG("upper", py_upper(s))},
      {"lower", STR_NOARG("lower", py_lower(s))},
      {"casefold", STR_NOARG("casefold", py_lower(s))},
      {"capitalize", STR_NOARG("capitalize", py_capitalize(s))},
      {"title", STR_NOARG("title", py_str_title(s))},
      {"swapcase", STR_NOARG("swapcase", py_swapcase(s))},
      {"isdigit", STR_NOARG("isdigit", all_chars(s, py_isdigit))},
      {"isnumeric", STR_NOARG("isnumeric", all_chars(s, py_isdigit))},
      {"isdecimal", STR_NOARG("isdecimal", all_chars(s, py_isdigit))},
      {"isalpha", STR_NOARG("isalpha", all_chars(s, py_isalpha))},
      {"isalnum", STR_NOARG("isalnum", all_chars(s, [](char32_t c) { return py_isalpha(c) || py_isdigit(c); }))},
      {"isspace", STR_NOARG("isspace", all_chars(s, py_isspace))},
      {"islower", [](const Value& self, CallArgs& a) { return bind_args("islower", a, {}), str_is_case(self.as_string(), false); }},
      {"isupper", [](const Value& self, CallArgs& a) { return bind_args("isupper", a, {}), str_is_case(self.as_string(), true); }},
      {"strip", [](const Value& s, CallArgs& a) { return str_strip_impl(s, a, "strip", true, true); }},
      {"lstrip", [](const Value& s, CallArgs& a) { return str_strip_impl(s, a, "lstrip", true, false); }},
      {"rstrip", [](const Value& s, CallArgs& a) { return str_strip_impl(s, a, "rstrip", false, true); }},
      {"split", [](const Value& s, CallArgs& a) { return str_split_impl(s, a, "split", false); }},
      {"rsplit", [](const Value& s, CallArgs& a) { return str_split_impl(s, a, "rsplit", true); }},
      {"splitlines", [](const Value& s, CallArgs& a) {
         auto args = bind_args("splitlines", a, {"keepends"});
         return str_list(py_splitlines(s.as_string(), args[0] && args[0]->truthy()));
       }},
      {"startswith", [](const Value& s, CallArgs& a) { return str_affix(s, a, "startswith", true); }},
      {"endswith", [](const Value& s, CallArgs& a) { return str_affix(s, a, "endswith", false); }},
      {"ljust", [](const Value& s, CallArgs& a) { return str_pad(s, a, "ljust", -1); }},
      {"center", [](const Value& s, CallArgs& a) { return str_pad(s, a, "center", 0); }},
      {"rjust", [](const Value& s, CallArgs& a) { return str_pad(s, a, "rjust", 1); }},
      {"zfill", [](const Value& s, CallArgs& a) {
         auto args = bind_args("zfill", a, {"width"}, 1);
         std::string str = s.as_string();
         int64_t pad = int_arg(args[0], "zfill", 0) - static_cast<int64_t>(utf8_length(str));
         size_t at = (!str.empty() && (str[0] == '-' || str[0] == '+')) ? 1 : 0;
         if (pad > 0) check_string(uint64_t(pad) + str.size(), "zfill() width"), str.insert(at, static_cast<size_t>(pad), '0');
         return Value(str);
       }},
      {"find", [](const Value& s, CallArgs& a) { return str_find_impl(s, a, "find", false, false); }},
      {"rfind", [](const Value& s, CallArgs& a) { return str_find_impl(s, a, "rfind", true, false); }},
      {"index", [](const Value& s, CallArgs& a) { return str_find_impl(s, a, "index", false, true); }},
      {"rindex", [](const Value& s, CallArgs& a) { return str_find_impl(s, a, "rindex", true, true); }},
      {"count", [](const Value& s, CallArgs& a) {
         auto args = bind_args("count", a, {"sub"}, 1);
         return Value(py_count(s.as_string(), str_arg(args[0], "count")));
       }},
      {"replace", [](const Value& s, CallArgs& a) {
         auto args = bind_args("replace", a, {"old", "new", "count"}, 2);
         return Value(py_replace(s.as_string(), str_arg(args[0], "replace"), str_arg(args[1], "replace"),
                                 int_arg(args[2], "replace", -1)));
       }},
      {"removeprefix", [](const Value& s, CallArgs& a) {
         auto args = bind_args("removeprefix", a, {"prefix"}, 1);
         const std::string& p = str_arg(args[0], "removeprefix");
         return s.as_string().rfind(p, 0) == 0 ? Value(s.as_string().substr(p.size())) : s;
       }},
      {"removesuffix", [](const Value& s, CallArgs& a) {
         auto args = bind_args("removesuffix", a, {"suffix"}, 1);
         const std::string& p = str_arg(args[0], "removesuffix");
         const std::string& str = s.as_string();
         bool hit = !p.empty() && str.size() >= p.size() && str.compare(str.size() - p.size(), p.size(), p) == 0;
         return hit ? Value(str.substr(0, str.size() - p.size())) : s;
       }},
      {"join", str_join},
      {"partition", [](const Value& s, CallArgs& a) { return str_partition(s, a, "partition", false); }},
      {"rpartition", [](const Value& s, CallArgs& a) { return str_partition(s, a, "rpartition", true); }},
      {"format", [](const Value& s, CallArgs& a) { return Value(str_format(s.as_string(), a)); }},
  };
  return m;
}
#undef STR_NOARG

Value dict_items(const Value& self, CallArgs& a) {
  bind_args("items", a, {});
  List out;
  for (const auto& kv : self.as_dict().items) out.push_back(Value::tuple({kv.first, kv.second}));
  return Value::view(ViewKind::DictItems, std::move(out));
}

const std::map<std::string, Method, std::less<>>& dict_methods() {
  static const std::map<std::string, Method, std::less<>> m = {
      {"items", dict_items},
      {"keys", [](const Value& self, CallArgs& a) {
         bind_args("keys", a, {});
         List out;
         for (const auto& kv : self.as_dict().items) out.push_back(kv.first);
         return Value::view(ViewKind::DictKeys, std::move(out));
       }},
      {"values", [](const Value& self, CallArgs& a) {
         bind_args("values", a, {});
         List out;
         for (const auto& kv : self.as_dict().items) out.push_back(kv.second);
         return Value::view(ViewKind::DictValues, std::move(out));
       }},
      {"get", [](const Value& self, CallArgs& a) {
         auto args = bind_args("get", a, {"key", "default"}, 1);
         const Value* v = self.as_dict().find(*args[0]);
         return v ? *v : args[1] ? *args[1] : Value::none();
       }},
      {"copy", [](const Value& self, CallArgs& a) {
         bind_args("copy", a, {});
         auto d = make_dict();
         d->items = self.as_dict().items;
         return Value::dict(d);
       }},
  };
  return m;
}

Value list_count_index(const Value& self, CallArgs& a, bool index) {
  auto args = bind_args(index ? "index" : "count", a, {"value"}, 1);
  int64_t n = 0, i = 0;
  for (const Value& v : self.as_list()) {
    if (py_equal(v, *args[0])) {
      if (index) return Value(i);
      ++n;
    }
    ++i;
  }
  if (index) jinja_fail(args[0]->repr(), " is not in list");
  return Value(n);
}

bool is_unsafe(const Value& obj, std::string_view name) {
  static const std::vector<std::string_view> kList = {"append", "clear", "extend", "insert", "pop", "remove",
                                                      "reverse", "sort"};
  static const std::vector<std::string_view> kDict = {"clear", "pop", "popitem", "setdefault", "update"};
  const auto& names = obj.type() == Type::List ? kList : kDict;
  return (obj.type() == Type::List || obj.is_mapping()) && std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Value method_of(const Value& obj, const std::string& name) {
  Method m = nullptr;
  if (obj.is_string()) {
    auto it = str_methods().find(name);
    if (it != str_methods().end()) m = it->second;
  } else if (obj.is_mapping()) {
    auto it = dict_methods().find(name);
    if (it != dict_methods().end()) m = it->second;
  } else if (obj.is_list() && (name == "count" || name == "index")) {
    m = name == "index" ? [](const Value& s, CallArgs& a) { return list_count_index(s, a, true); }
                        : [](const Value& s, CallArgs& a) { return list_count_index(s, a, false); };
  }
  if (m) {
    return Value::callable(name, [obj, m](CallArgs& a) { return m(obj, a); });
  }
  if (is_unsafe(obj, name)) {
    std::string msg = cat("access to attribute '", name, "' of '", obj.type_name(),
                          "' object is unsafe (hint: templates cannot modify values; build a new one with + or "
                          "use namespace())");
    return Value::callable(name, [msg](CallArgs&) -> Value { jinja_fail(msg); });
  }
  return Value();
}

// ---- printf-style formatting: '%s: %d' % (a, b) ----

namespace {

struct Spec {
  std::string flags;
  int width = -1, precision = -1;
  char conv = 's';
};

// One more digit of a width or precision; a number past kMaxStringBytes fails (before the
// int could overflow: 67108864 * 10 + 9 still fits).
void add_digit(int& n, char digit, const char* what) {
  n = std::max(n, 0) * 10 + (digit - '0');
  if (n > static_cast<int>(kMaxStringBytes)) check_string(uint64_t(n), what);
}

std::string pad_to(std::string s, const Spec& sp) {
  int64_t n = static_cast<int64_t>(utf8_length(s));
  if (sp.width <= n) return s;
  std::string pad(static_cast<size_t>(sp.width - n), ' ');
  return sp.flags.find('-') != std::string::npos ? s + pad : pad + s;
}

std::string format_one(const Value& v, const Spec& sp) {
  char buf[512];
  std::string cfmt = "%";
  cfmt += sp.flags;
  if (sp.width >= 0) cfmt += std::to_string(sp.width);
  if (sp.precision >= 0) cfmt += '.', cfmt += std::to_string(sp.precision);
  switch (sp.conv) {
    case 's': case 'r': case 'a': {
      std::string s = sp.conv == 's' ? v.str() : v.repr();
      if (sp.precision >= 0) s = utf8_encode(utf8_decode(s).substr(0, static_cast<size_t>(sp.precision)));
      return pad_to(s, sp);
    }
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': {
      if (!v.is_number()) jinja_fail("%", sp.conv, " format: a real number is required, not ", v.type_name());
      int64_t i = v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float())) : v.as_int();
      char c = sp.conv == 'i' || sp.conv == 'u' ? 'd' : sp.conv;
      std::snprintf(buf, sizeof buf, (cfmt + "ll" + c).c_str(), static_cast<long long>(i));
      return buf;
    }
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
      if (!v.is_number()) jinja_fail("must be real number, not ", v.type_name());
      std::snprintf(buf, sizeof buf, (cfmt + sp.conv).c_str(), v.as_float());
      return buf;
    case 'c':
      if (v.is_string() && utf8_length(v.as_string()) == 1) return pad_to(v.as_string(), sp);
      if (v.is_int()) {
        std::string s;
        utf8_append(s, static_cast<char32_t>(v.as_int()));
        return pad_to(s, sp);
      }
      jinja_fail("%c requires an int or a unicode character, not ", v.type_name());
    default: jinja_fail("unsupported format character '", sp.conv, "'");
  }
}

}  // namespace

std::string percent_format(const std::string& fmt, const Value& args) {
  List values = args.type() == Type::Tuple ? args.as_list() : List{args};
  size_t next_arg = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) jinja_fail("incomplete format");
    const Value* v = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) jinja_fail("incomplete format key");
      if (!args.is_mapping()) jinja_fail("format requires a mapping");
      v = args.as_dict().find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!v) jinja_fail("KeyError: '", fmt.substr(i + 1, close - i - 1), "'");
      used_mapping = true;
      i = close + 1;
    }
    Spec sp;
    while (i < fmt.size() && std::string_view("-+ #0").find(fmt[i]) != std::string_view::npos) sp.flags += fmt[i++];
    if (i < fmt.size() && fmt[i] == '*') jinja_fail("'*' widths are not supported in % formatting");
    for (; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i) add_digit(sp.width, fmt[i], "a % format width");
    if (i < fmt.size() && fmt[i] == '.') {
      sp.precision = 0;
      for (++i; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i) add_digit(sp.precision, fmt[i], "a % format precision");
    }
    while (i < fmt.size() && (fmt[i] == 'l' || fmt[i] == 'h' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) jinja_fail("incomplete format");
    sp.conv = fmt[i];
    if (sp.conv == '%') {
      out.push_back('%');
      continue;
    }
    if (!v) {
      if (next_arg >= values.size()) jinja_fail("not enough arguments for format string");
      v = &values[next_arg++];
    }
    out += format_one(*v, sp);
  }
  if (!used_mapping && next_arg < values.size() && !(values.size() == 1 && args.is_mapping())) {
    jinja_fail("not all arguments converted during string formatting");
  }
  return out;
}

// ---- str.format: '{} {name} {0!r}'.format(...) ----

namespace {

// Format spec subset: [[fill]align][width][.precision][type] for str, int and float values.
std::string apply_format_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return v.str();
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  std::u32string u = utf8_decode(spec);
  if (u.size() >= 2 && (u[1] == '<' || u[1] == '>' || u[1] == '^')) {
    fill = utf8_encode(u.substr(0, 1));
    align = static_cast<char>(u[1]);
    u = u.substr(2);
  } else if (!u.empty() && (u[0] == '<' || u[0] == '>' || u[0] == '^')) {
    align = static_cast<char>(u[0]);
    u = u.substr(1);
  }
  std::string rest = utf8_encode(u);
  Spec sp;
  for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) add_digit(sp.width, rest[i], "a format width");
  if (i < rest.size() && rest[i] == '.') {
    sp.precision = 0;
    for (++i; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) add_digit(sp.precision, rest[i], "a format precision");
  }
  if (i + 1 < rest.size()) jinja_fail("format spec '", spec, "' is not supported");
  sp.conv = i < rest.size() ? rest[i] : (v.is_string() ? 's' : v.is_float() && sp.precision >= 0 ? 'g' : 's');
  int width = sp.width;
  sp.width = -1;
  std::string body = sp.conv == 's' && !v.is_string() && sp.precision < 0 ? v.str() : format_one(v, sp);
  int64_t n = static_cast<int64_t>(utf8_length(body));
  if (width <= n) return body;
  if (!align) align = v.is_number() ? '>' : '<';
  int64_t pad = width - n, left = align == '<' ? 0 : align == '>' ? pad : pad / 2;
  check_string(uint64_t(pad) * fill.size() + body.size(), "a format width");
  std::string out;
  for (int64_t k = 0; k < left; ++k) out += fill;
  out += body;
  for (int64_t k = 0; k < pad - left; ++k) out += fill;
  return out;
}

std::string str_format(const std::string& fmt, CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}' ) {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else jinja_fail("single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) jinja_fail("single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1), spec, conv;
    i = close;
    if (size_t colon = field.find(':'); colon != std::string::npos) spec = field.substr(colon + 1), field.resize(colon);
    if (size_t bang = field.find('!'); bang != std::string::npos) conv = field.substr(bang + 1), field.resize(bang);
    size_t name_end = std::min(field.find('.'), field.find('['));
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty() || std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t idx = head.empty() ? auto_index++ : std::stoul(head);
      if (idx >= a.pos.size()) jinja_fail("Replacement index ", idx, " out of range for positional args tuple");
      v = a.pos[idx];
    } else {
      auto it = std::find_if(a.kw.begin(), a.kw.end(), [&](const auto& kv) { return kv.first == head; });
      if (it == a.kw.end()) jinja_fail("KeyError: '", head, "'");
      v = it->second;
    }
    if (name_end != std::string::npos) jinja_fail("attribute or index lookups in format fields are not supported");
    if (conv == "r" || conv == "a") v = Value(v.repr());
    else if (conv == "s") v = Value(v.str());
    else if (!conv.empty()) jinja_fail("Unknown conversion specifier ", conv);
    out += apply_format_spec(v, spec);
  }
  return out;
}

}  // namespace

}  // namespace tpro::jinja
