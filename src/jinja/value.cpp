// Jinja values: construction, truthiness, str()/repr(), equality and ordering as CPython
// defines them, json.dumps as transformers' tojson calls it, and conversion from nlohmann.
#include "jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "jinja/limits.h"
#include "jinja/text.h"

namespace tpro::jinja {

namespace {

// Containers are freed through a queue, not recursively: a list nested a million deep (a
// template can build one with `ns.x = [ns.x]`) would otherwise overflow the stack on its way out.
thread_local bool t_graveyard_gone = false;  // trivially destructible: valid to the very end
struct Graveyard {
  std::vector<const List*> lists;
  std::vector<const Dict*> dicts;
  std::vector<const IterState*> iters;
  bool draining = false;
  ~Graveyard() { t_graveyard_gone = true; }
};
thread_local Graveyard t_graveyard;

template <typename T>
void bury(std::vector<const T*> Graveyard::*pile, const T* p) {
  if (t_graveyard_gone) {  // a value outliving this thread's queue (a static, at exit)
    delete p;
    return;
  }
  Graveyard& g = t_graveyard;
  (g.*pile).push_back(p);
  if (g.draining) return;  // a container being freed: its children wait in the queue
  g.draining = true;
  while (!g.lists.empty() || !g.dicts.empty() || !g.iters.empty()) {
    if (!g.lists.empty()) {
      const List* l = g.lists.back();
      g.lists.pop_back();
      delete l;
    } else if (!g.dicts.empty()) {
      const Dict* d = g.dicts.back();
      g.dicts.pop_back();
      delete d;
    } else {
      const IterState* it = g.iters.back();
      g.iters.pop_back();
      delete it;
    }
  }
  g.draining = false;
}

void bury_list(const List* p) { bury(&Graveyard::lists, p); }
void bury_dict(const Dict* p) { bury(&Graveyard::dicts, p); }
void bury_iter(const IterState* p) { bury(&Graveyard::iters, p); }

}  // namespace

Value::Value(std::string s) : type_(Type::String) {
  check_string(s.size(), "this operation");
  charge_built(s.size());
  s_ = std::make_shared<const std::string>(std::move(s));
}

Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::list(List items) {
  Value v;
  v.type_ = Type::List;
  check_list(items.size(), "this operation");
  charge_built(items.size() * sizeof(Value));
  v.l_ = std::shared_ptr<const List>(new List(std::move(items)), bury_list);
  return v;
}

Value Value::tuple(List items) {
  Value v = list(std::move(items));
  v.type_ = Type::Tuple;
  return v;
}

Value Value::dict(std::shared_ptr<Dict> d) {
  Value v;
  v.type_ = Type::Dict;
  v.d_ = std::move(d);
  return v;
}

Value Value::callable(std::string name, Function fn) {
  Value v;
  v.type_ = Type::Callable;
  v.c_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::view(ViewKind kind, List items, std::string range_repr) {
  Value v = list(std::move(items));
  v.type_ = Type::View;
  v.sub_ = static_cast<uint8_t>(kind);
  if (kind == ViewKind::Range) v.s_ = std::make_shared<const std::string>(std::move(range_repr));
  return v;
}

Value Value::iterator(List items, std::string type_name) {
  Value v;
  v.type_ = Type::Iterator;
  check_list(items.size(), "this operation");
  charge_built(items.size() * sizeof(Value));
  v.it_ = std::shared_ptr<IterState>(new IterState{std::move(items)}, bury_iter);
  v.s_ = std::make_shared<const std::string>(std::move(type_name));
  return v;
}

bool Value::is_mapping() const { return type_ == Type::Dict && d_->kind == DictKind::Dict; }

const std::string& Value::undefined_hint() const {
  static const std::string kNone = "value is undefined";
  return s_ ? *s_ : kNone;
}

bool Value::same_object(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::List: case Type::Tuple: case Type::View: return l_ == o.l_;
    case Type::Iterator: return it_ == o.it_;
    case Type::Dict: return d_ == o.d_;
    case Type::Callable: return c_ == o.c_;
    default: return py_equal(*this, o);
  }
}

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined: case Type::None: return false;
    case Type::Bool: return b_;
    case Type::Int: return i_ != 0;
    case Type::Float: return f_ != 0.0;
    case Type::String: return !s_->empty();
    case Type::List: case Type::Tuple: case Type::View: return !l_->empty();
    case Type::Iterator: return true;  // a generator object is always truthy
    case Type::Dict: return d_->kind != DictKind::Dict || !d_->items.empty();
    case Type::Callable: return true;
  }
  return false;
}

namespace {

// repr()/str() of containers check the size as they grow: items repeat shared values, so the
// text can be far larger than the memory the value holds.
std::string join_repr(const List& items, const char* open, const char* close, bool tuple) {
  NestingGuard guard("repr");
  std::string out = open;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i].repr();
    check_string(out.size(), "printing a list");
  }
  if (tuple && items.size() == 1) out += ",";
  return out + close;
}

std::string dict_repr(const Dict& d) {
  NestingGuard guard("repr");
  std::string out = "{";
  for (size_t i = 0; i < d.items.size(); ++i) {
    if (i) out += ", ";
    out += d.items[i].first.repr();
    out += ": ";
    out += d.items[i].second.repr();
    check_string(out.size(), "printing a dict");
  }
  return out + "}";
}

}  // namespace

std::string Value::str() const {
  switch (type_) {
    case Type::Undefined: return "";
    case Type::None: return "None";
    case Type::Bool: return b_ ? "True" : "False";
    case Type::Int: return std::to_string(i_);
    case Type::Float: return py_float_repr(f_);
    case Type::String: return *s_;
    case Type::List: return join_repr(*l_, "[", "]", false);
    case Type::Tuple: return join_repr(*l_, "(", ")", true);
    case Type::Dict:
      if (d_->kind == DictKind::Namespace) return "<Namespace " + dict_repr(*d_) + ">";
      if (d_->kind == DictKind::Loop) {
        const Value* i = d_->find("index");
        const Value* n = d_->find("length");
        return cat("<LoopContext ", i ? i->str() : "?", "/", n ? n->str() : "?", ">");
      }
      return dict_repr(*d_);
    case Type::Callable: return "<function " + c_->name + ">";
    case Type::View:
      if (view_kind() == ViewKind::Range) return *s_;
      return type_name() + "(" + join_repr(*l_, "[", "]", false) + ")";
    case Type::Iterator:
      // Python prints "<generator object ... at 0x...>": nothing a template can depend on.
      jinja_fail("cannot print a ", *s_, " object (hint: convert it with | list or | join)");
  }
  return "";
}

std::string Value::repr() const {
  if (type_ == Type::String) return py_str_repr(*s_);
  if (type_ == Type::Undefined) return "Undefined";
  return str();
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::Undefined: return "Undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return "list";
    case Type::Tuple: return "tuple";
    case Type::Dict:
      return d_->kind == DictKind::Namespace ? "Namespace" : d_->kind == DictKind::Loop ? "LoopContext" : "dict";
    case Type::Callable: return "function";
    case Type::View:
      switch (view_kind()) {
        case ViewKind::Range: return "range";
        case ViewKind::DictKeys: return "dict_keys";
        case ViewKind::DictValues: return "dict_values";
        case ViewKind::DictItems: return "dict_items";
      }
      return "view";
    case Type::Iterator: return *s_;
  }
  return "?";
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& kv : items) {
    if (py_equal(kv.first, key)) return &kv.second;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& kv : items) {
    if (kv.first.is_string() && kv.first.as_string() == key) return &kv.second;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& kv : items) {
    if (py_equal(kv.first, key)) {
      kv.second = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

std::shared_ptr<Dict> make_dict(DictKind kind) {
  auto d = std::shared_ptr<Dict>(new Dict, bury_dict);
  d->kind = kind;
  return d;
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type() || (a.is_view() && a.view_kind() != b.view_kind())) return false;
  switch (a.type()) {
    case Type::Undefined: case Type::None: return true;
    case Type::String: return a.as_string() == b.as_string();
    case Type::List: case Type::Tuple: case Type::View: {
      const List &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      NestingGuard guard("comparison");
      for (size_t i = 0; i < x.size(); ++i) {
        if (!py_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Type::Dict: {
      if (!a.is_mapping() || !b.is_mapping()) return &a.as_dict() == &b.as_dict();
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      NestingGuard guard("comparison");
      for (const auto& kv : x.items) {
        const Value* other = y.find(kv.first);
        if (!other || !py_equal(kv.second, *other)) return false;
      }
      return true;
    }
    case Type::Callable: case Type::Iterator: return a.same_object(b);
    default: return false;
  }
}

int py_compare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) jinja_fail(a.undefined_hint());
  if (b.is_undefined()) jinja_fail(b.undefined_hint());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code-point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && a.type() == b.type()) {
    NestingGuard guard("comparison");
    const List &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!py_equal(x[i], y[i])) return py_compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  jinja_fail("'", op, "' not supported between instances of '", a.type_name(), "' and '", b.type_name(), "'");
}

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  auto esc16 = [&](unsigned v) {
    std::snprintf(buf, sizeof buf, "\\u%04x", v);
    out += buf;
  };
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {  // UTF-16 surrogate pair, as Python writes it
        char32_t v = c - 0x10000;
        esc16(0xD800 + (v >> 10));
        esc16(0xDC00 + (v & 0x3FF));
      } else {
        esc16(c);
      }
    } else {
      utf8_append(out, c);
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(d);
}

std::string json_key(const Value& k) {
  switch (k.type()) {
    case Type::String: return k.as_string();
    case Type::Int: return std::to_string(k.as_int());
    case Type::Float: return json_float(k.as_float());
    case Type::Bool: return k.as_bool() ? "true" : "false";
    case Type::None: return "null";
    default: jinja_fail("keys must be str, int, float, bool or None, not ", k.type_name());
  }
}

void json_value(std::string& out, const Value& v, const JsonDumpOptions& opt, int depth) {
  const std::string item_sep = opt.separators ? opt.separators->first : opt.indent ? "," : ", ";
  const std::string key_sep = opt.separators ? opt.separators->second : ": ";
  auto newline = [&](int level) {
    check_string(out.size() + 1 + uint64_t(level) * opt.indent->size(), "tojson");
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += *opt.indent;
  };
  switch (v.type()) {
    case Type::None: out += "null"; return;
    case Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Type::Int: out += std::to_string(v.as_int()); return;
    case Type::Float: out += json_float(v.as_float()); return;
    case Type::String: json_string(out, v.as_string(), opt.ensure_ascii); return;
    case Type::List: case Type::Tuple: {
      const List& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      NestingGuard guard("tojson");
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        if (opt.indent) newline(depth + 1);
        json_value(out, items[i], opt, depth + 1);
        check_string(out.size(), "tojson");
      }
      if (opt.indent) newline(depth);
      out.push_back(']');
      return;
    }
    case Type::Dict: {
      if (!v.is_mapping()) break;
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : v.as_dict().items) items.push_back(&kv);
      if (opt.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](auto* x, auto* y) { return py_compare(x->first, y->first) < 0; });
      }
      if (items.empty()) {
        out += "{}";
        return;
      }
      NestingGuard guard("tojson");
      out.push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        if (opt.indent) newline(depth + 1);
        json_string(out, json_key(items[i]->first), opt.ensure_ascii);
        out += key_sep;
        json_value(out, items[i]->second, opt, depth + 1);
        check_string(out.size(), "tojson");
      }
      if (opt.indent) newline(depth);
      out.push_back('}');
      return;
    }
    default: break;
  }
  jinja_fail("Object of type ", v.type_name(), " is not JSON serializable");
}

template <typename Json>
Value convert_json(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) jinja_fail("integer ", u, " in the template data is too large");
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      NestingGuard guard("template data");
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert_json(e));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      NestingGuard guard("template data");
      auto d = make_dict();
      d->items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d->items.emplace_back(Value(it.key()), convert_json(it.value()));
      return Value::dict(std::move(d));
    }
    default: jinja_fail("binary JSON values cannot be passed to a template");
  }
}

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& opt) {
  std::string out;
  json_value(out, v, opt, 0);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) { return convert_json(j); }
Value from_json(const nlohmann::json& j) { return convert_json(j); }

std::vector<std::optional<Value>> bind_args(std::string_view fn, const CallArgs& args,
                                            std::initializer_list<std::string_view> params,
                                            size_t n_required) {
  std::vector<std::string_view> names(params);
  std::vector<std::optional<Value>> out(names.size());
  if (args.pos.size() > names.size()) {
    jinja_fail(fn, "() takes at most ", names.size(), " argument", names.size() == 1 ? "" : "s", " (",
               args.pos.size(), " given)");
  }
  for (size_t i = 0; i < args.pos.size(); ++i) out[i] = args.pos[i];
  for (const auto& [key, value] : args.kw) {
    auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) jinja_fail(fn, "() got an unexpected keyword argument '", key, "'");
    auto& slot = out[static_cast<size_t>(it - names.begin())];
    if (slot) jinja_fail(fn, "() got multiple values for argument '", key, "'");
    slot = value;
  }
  for (size_t i = 0; i < n_required && i < names.size(); ++i) {
    if (!out[i]) jinja_fail(fn, "() missing required argument '", names[i], "'");
  }
  return out;
}

}  // namespace tpro::jinja
