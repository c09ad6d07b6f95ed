// Attribute/item lookup, slicing, operators, `in` and iteration with Python's semantics and
// Jinja's Undefined rules: a missing key or attribute gives Undefined carrying Jinja's message
// ("'dict object' has no attribute 'x'"); using that Undefined in arithmetic, as an object or
// as a callee raises the message. Integer overflow is an error rather than a wrong number.
#include <algorithm>
#include <cmath>
#include <limits>

#include "jinja/builtins.h"
#include "jinja/limits.h"
#include "jinja/text.h"

namespace tpro::jinja {

namespace {

// Jinja's object_type_repr: "None" or "<type> object".
std::string object_repr(const Value& v) { return v.is_none() ? "None" : v.type_name() + " object"; }

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(cat("'", object_repr(obj), "' has no attribute '", name, "'"));
}

Value missing_item(const Value& obj, const Value& key) {
  return Value::undefined(cat(object_repr(obj), " has no element ", key.repr()));
}

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
  jinja_fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

[[noreturn]] void overflow() { jinja_fail("integer overflow (tpro's Jinja uses 64-bit integers)"); }
int64_t add_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
int64_t sub_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
int64_t mul_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > kMaxStringBytes / s.size()) {
      check_string(static_cast<uint64_t>(n) > UINT64_MAX / s.size() ? UINT64_MAX : static_cast<uint64_t>(n) * s.size(),
                   "string repetition");
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const List& l = seq.as_list();
  if (!l.empty() && static_cast<uint64_t>(n) > kMaxListItems / l.size()) {
    check_list(static_cast<uint64_t>(n) > UINT64_MAX / l.size() ? UINT64_MAX : static_cast<uint64_t>(n) * l.size(),
               "list repetition");
  }
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.begin(), l.end());
  return seq.type() == Type::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value add(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(a.as_float() + b.as_float());
    return Value(add_i(a.as_int(), b.as_int()));
  }
  if (a.is_string() && b.is_string()) {
    check_string(uint64_t(a.as_string().size()) + b.as_string().size(), "'+' concatenation");
    return Value(a.as_string() + b.as_string());
  }
  if (a.is_list() && a.type() == b.type()) {
    check_list(uint64_t(a.as_list().size()) + b.as_list().size(), "'+' concatenation");
    List out = a.as_list();
    out.insert(out.end(), b.as_list().begin(), b.as_list().end());
    return a.type() == Type::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (a.is_string() || a.is_list()) {
    jinja_fail("can only concatenate ", a.type_name(), " (not \"", b.type_name(), "\") to ", a.type_name());
  }
  unsupported("+", a, b);
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

Value arith(std::string_view op, const Value& a, const Value& b) {
  if (op == "+") return add(a, b);
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && b.is_number() && !b.is_float()) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && a.is_number() && !a.is_float()) return repeat(b, a.as_int());
  }
  if (op == "%" && a.is_string()) return Value(percent_format(a.as_string(), b));
  if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
  bool fl = a.is_float() || b.is_float();
  double x = a.as_float(), y = b.as_float();
  int64_t i = a.as_int(), j = b.as_int();
  if (op == "-") return fl ? Value(x - y) : Value(sub_i(i, j));
  if (op == "*") return fl ? Value(x * y) : Value(mul_i(i, j));
  if ((op == "/" || op == "//" || op == "%") && (fl ? y == 0.0 : j == 0)) jinja_fail("division by zero");
  if (op == "/") return Value(x / y);
  if (op == "//") {
    if (fl) return Value(std::floor(x / y));
    if (i == std::numeric_limits<int64_t>::min() && j == -1) overflow();
    int64_t q = i / j;
    return Value((i % j != 0 && ((i < 0) != (j < 0))) ? q - 1 : q);
  }
  if (op == "%") {
    if (fl) return Value(py_fmod(x, y));
    if (j == -1) return Value(int64_t{0});
    int64_t m = i % j;
    return Value((m != 0 && ((m < 0) != (j < 0))) ? m + j : m);
  }
  if (op == "**") {
    if (!fl && j >= 0) {
      int64_t out = 1;
      for (int64_t k = 0; k < j; ++k) out = mul_i(out, i);
      return Value(out);
    }
    if (x == 0.0 && y < 0) jinja_fail("0.0 cannot be raised to a negative power");
    return Value(std::pow(x, y));
  }
  jinja_fail("unknown operator '", op, "'");
}

// Python slice.indices(): clamps start/stop for a sequence of length n and step.
void slice_indices(int64_t n, const Value& start, const Value& stop, int64_t step, int64_t& b, int64_t& e) {
  auto given = [](const Value& v) { return !v.is_undefined() && !v.is_none(); };
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (!given(v)) return dflt;
    int64_t x = v.as_int();
    if (x < 0) x += n;
    if (step > 0) return std::min(std::max<int64_t>(x, 0), n);
    return std::min(std::max<int64_t>(x, -1), n - 1);
  };
  b = clamp(start, step > 0 ? 0 : n - 1);
  e = clamp(stop, step > 0 ? n : -1);
}

bool is_range(const Value& v) { return v.is_view() && v.view_kind() == ViewKind::Range; }

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) jinja_fail(obj.undefined_hint());
  if (obj.is_dict()) {
    if (obj.is_mapping()) {
      Value m = method_of(obj, name);
      if (!m.is_undefined()) return m;
    }
    const Value* v = obj.as_dict().find(std::string_view(name));
    return v ? *v : missing_attr(obj, name);
  }
  Value m = method_of(obj, name);
  return m.is_undefined() ? missing_attr(obj, name) : m;
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) jinja_fail(obj.undefined_hint());
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string() || is_range(obj)) && key.is_number() && !key.is_float()) {
    int64_t i = key.as_int();
    if (!obj.is_string()) {
      int64_t n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
    } else {
      std::u32string u = utf8_decode(obj.as_string());
      int64_t n = static_cast<int64_t>(u.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(utf8_encode(std::u32string(1, u[static_cast<size_t>(i)])));
    }
  }
  if (key.is_string()) return obj.is_dict() && !obj.is_mapping() ? missing_attr(obj, key.as_string())
                                                                   : get_attr(obj, key.as_string());
  return missing_item(obj, key);
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) jinja_fail(obj.undefined_hint());
  for (const Value* v : {&start, &stop, &step}) {
    if (!v->is_undefined() && !v->is_none() && !(v->is_number() && !v->is_float())) {
      jinja_fail("slice indices must be integers or None, not ", v->type_name());
    }
  }
  int64_t st = (step.is_undefined() || step.is_none()) ? 1 : step.as_int();
  if (st == 0) jinja_fail("slice step cannot be zero");
  // Slicing a range gives a list here (Python: another range); only its printed form differs.
  if (!obj.is_list() && !obj.is_string() && !is_range(obj)) {
    return Value::undefined(cat("'", object_repr(obj), "' cannot be sliced"));
  }
  std::u32string u;
  int64_t n;
  if (obj.is_string()) {
    u = utf8_decode(obj.as_string());
    n = static_cast<int64_t>(u.size());
  } else {
    n = static_cast<int64_t>(obj.as_list().size());
  }
  int64_t b, e;
  slice_indices(n, start, stop, st, b, e);
  std::u32string us;
  List items;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (obj.is_string()) {
      us.push_back(u[static_cast<size_t>(i)]);
    } else {
      items.push_back(obj.as_list()[static_cast<size_t>(i)]);
    }
  }
  if (obj.is_string()) return Value(utf8_encode(us));
  return obj.type() == Type::Tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

Value binary_op(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") {  // bounded like '*' (strings are copied once: ns.s ~ x runs in loops)
    std::string ls = a.is_string() ? std::string() : a.str(), rs = b.is_string() ? std::string() : b.str();
    const std::string& l = a.is_string() ? a.as_string() : ls;
    const std::string& r = b.is_string() ? b.as_string() : rs;
    check_string(uint64_t(l.size()) + r.size(), "'~' concatenation");
    std::string out;
    out.reserve(l.size() + r.size());
    out.append(l).append(r);
    return Value(std::move(out));
  }
  if (a.is_undefined()) jinja_fail(a.undefined_hint());
  if (b.is_undefined()) jinja_fail(b.undefined_hint());
  return arith(op, a, b);
}

Value unary_op(std::string_view op, const Value& a) {
  if (a.is_undefined()) jinja_fail(a.undefined_hint());
  if (!a.is_number()) jinja_fail("bad operand type for unary ", op, ": '", a.type_name(), "'");
  if (op == "+") return a.is_float() ? a : Value(a.as_int());
  if (a.is_float()) return Value(-a.as_float());
  return Value(sub_i(0, a.as_int()));
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Type::Undefined: return false;  // Undefined iterates as empty
    case Type::String:
      if (!item.is_string()) {
        jinja_fail("'in <string>' requires string as left operand, not ", item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Type::List: case Type::Tuple: case Type::View:
      for (const Value& v : container.as_list()) {
        if (py_equal(v, item)) return true;
      }
      return false;
    case Type::Iterator: {  // consumes up to and including the match, as Python does
      IterState& st = container.as_iter();
      while (st.pos < st.items.size()) {
        if (py_equal(st.items[st.pos++], item)) return true;
      }
      return false;
    }
    case Type::Dict:
      if (container.is_mapping()) return container.as_dict().find(item) != nullptr;
      break;
    default: break;
  }
  jinja_fail("argument of type '", container.type_name(), "' is not iterable");
}

List iterate(const Value& v) {
  switch (v.type()) {
    case Type::Undefined: return {};
    case Type::List: case Type::Tuple: case Type::View: return v.as_list();
    case Type::Iterator: {
      IterState& st = v.as_iter();
      List rest(st.items.begin() + static_cast<std::ptrdiff_t>(st.pos), st.items.end());
      st.pos = st.items.size();
      return rest;
    }
    case Type::String: {
      List out;
      for (char32_t c : utf8_decode(v.as_string())) out.emplace_back(utf8_encode(std::u32string(1, c)));
      return out;
    }
    case Type::Dict:
      if (v.is_mapping()) {
        List out;
        for (const auto& kv : v.as_dict().items) out.push_back(kv.first);
        return out;
      }
      break;
    default: break;
  }
  jinja_fail("'", v.type_name(), "' object is not iterable");
}

Value get_attr_path(const Value& item, const Value& path, const Value* dflt) {
  std::vector<Value> parts;
  if (!path.is_string()) {
    parts.push_back(path);
  } else {
    for (const std::string& part : py_split(path.as_string(), std::string("."), -1, false)) {
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    }
  }
  Value cur = item;
  for (const Value& part : parts) {
    cur = get_item(cur, part);
    if (dflt && cur.is_undefined()) cur = *dflt;  // Jinja substitutes the default at every level
  }
  return cur;
}

}  // namespace tpro::jinja
