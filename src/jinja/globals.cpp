// Jinja's default global functions that chat templates call: range (with the sandbox's
// 100000-item limit), namespace, dict and joiner. lipsum and cycler are deliberately absent;
// raise_exception and strftime_now are transformers' additions, provided by ChatTemplate.
#include "jinja/builtins.h"

namespace tpro::jinja {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

Value range_fn(CallArgs& a) {
  if (!a.kw.empty()) jinja_fail("range() takes no keyword arguments");
  if (a.pos.empty() || a.pos.size() > 3) jinja_fail("range expected 1 to 3 arguments, got ", a.pos.size());
  for (const Value& v : a.pos) {
    if (!v.is_number() || v.is_float()) jinja_fail("'", v.type_name(), "' object cannot be interpreted as an integer");
  }
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) {
    stop = a.pos[0].as_int();
  } else {
    start = a.pos[0].as_int();
    stop = a.pos[1].as_int();
    if (a.pos.size() == 3) step = a.pos[2].as_int();
  }
  if (step == 0) jinja_fail("range() arg 3 must not be zero");
  List out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      jinja_fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ").");
    }
    out.emplace_back(i);
  }
  std::string repr = cat("range(", start, ", ", stop, step != 1 ? cat(", ", step) : std::string(), ")");
  return Value::view(ViewKind::Range, std::move(out), std::move(repr));
}

// dict(mapping_or_pairs, **kw) and namespace(...) share Python's dict() constructor rules.
Value dict_like(CallArgs& a, DictKind kind, const char* fn) {
  if (a.pos.size() > 1) jinja_fail(fn, " expected at most 1 argument, got ", a.pos.size());
  auto d = make_dict(kind);
  if (!a.pos.empty()) {
    const Value& src = a.pos[0];
    if (src.is_dict()) {
      d->items = src.as_dict().items;
    } else {
      for (const Value& pair : iterate(src)) {
        if (!pair.is_list() || pair.as_list().size() != 2) {
          jinja_fail(fn, " sequence elements must be pairs (key, value)");
        }
        d->set(pair.as_list()[0], pair.as_list()[1]);
      }
    }
  }
  for (auto& [k, v] : a.kw) d->set(Value(k), v);
  return Value::dict(d);
}

Value joiner_fn(CallArgs& a) {
  auto args = bind_args("joiner", a, {"sep"});
  std::string sep = args[0] ? args[0]->str() : ", ";
  auto used = std::make_shared<bool>(false);
  return Value::callable("joiner", [sep, used](CallArgs& b) {
    bind_args("joiner", b, {});
    if (!*used) {
      *used = true;
      return Value("");
    }
    return Value(sep);
  });
}

}  // namespace

void add_builtin_globals(std::vector<std::pair<std::string, Value>>& globals) {
  globals.emplace_back("range", Value::callable("range", range_fn));
  globals.emplace_back("namespace", Value::callable("namespace", [](CallArgs& a) {
                         return dict_like(a, DictKind::Namespace, "namespace");
                       }));
  globals.emplace_back("dict", Value::callable("dict", [](CallArgs& a) { return dict_like(a, DictKind::Dict, "dict"); }));
  globals.emplace_back("joiner", Value::callable("joiner", joiner_fn));
}

}  // namespace tpro::jinja
