// Values of the Jinja interpreter: Python's object model reduced to what chat templates use
// (Undefined, None, bool, int, float, str, list, tuple, dict, namespace, loop, callables), with
// CPython's str()/repr()/==/< and json.dumps so rendered text matches transformers byte for byte.
// Lists, tuples and dicts are immutable and shared (the sandbox transformers uses forbids
// mutation); only namespace() objects change, through `{% set ns.attr = ... %}`.
// Deliberately not here: arbitrary-precision ints (int64; overflow is an error), sets, bytes.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "jinja/error.h"

namespace tpro::jinja {

class Value;
using List = std::vector<Value>;
struct Dict;

// Arguments of a call: positional, then keyword in source order.
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};
using Function = std::function<Value(CallArgs&)>;

struct Callable {
  std::string name;  // for messages: "macro 'm'", "method 'upper' of str"
  Function fn;
};

// View: range() and dict.keys()/values()/items() (sized, re-iterable, not lists: they print and
// compare differently and tojson rejects them). Iterator: what map/select/unique/items/reverse
// filters return in Jinja, a one-shot generator: always truthy, no len(), consumed by use.
enum class Type : uint8_t { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Callable, View, Iterator };
enum class ViewKind : uint8_t { Range, DictKeys, DictValues, DictItems };

struct IterState {
  List items;
  size_t pos = 0;  // items before pos were consumed
};

class Value {
 public:
  Value() = default;  // Undefined
  Value(bool b) : type_(Type::Bool), b_(b) {}
  Value(int v) : type_(Type::Int), i_(v) {}
  Value(int64_t v) : type_(Type::Int), i_(v) {}
  Value(double v) : type_(Type::Float), f_(v) {}
  Value(std::string s);
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  static Value none();
  // `hint` is Jinja's message when the undefined value is used: "'x' is undefined".
  static Value undefined(std::string hint);
  static Value list(List items);
  static Value tuple(List items);
  static Value dict(std::shared_ptr<Dict> d);
  static Value callable(std::string name, Function fn);
  static Value view(ViewKind kind, List items, std::string range_repr = {});
  static Value iterator(List items, std::string type_name = "generator");

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_int() const { return type_ == Type::Int; }
  bool is_float() const { return type_ == Type::Float; }
  bool is_number() const { return type_ == Type::Int || type_ == Type::Float || type_ == Type::Bool; }
  bool is_string() const { return type_ == Type::String; }
  bool is_list() const { return type_ == Type::List || type_ == Type::Tuple; }  // any sequence
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_mapping() const;  // a plain dict (not a namespace or loop object)
  bool is_callable() const { return type_ == Type::Callable; }
  bool is_view() const { return type_ == Type::View; }
  bool is_iterator() const { return type_ == Type::Iterator; }
  ViewKind view_kind() const { return static_cast<ViewKind>(sub_); }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return type_ == Type::Bool ? (b_ ? 1 : 0) : i_; }  // bool counts as int
  double as_float() const { return type_ == Type::Float ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return *s_; }
  const List& as_list() const { return *l_; }  // List, Tuple and View items
  IterState& as_iter() const { return *it_; }
  Dict& as_dict() const { return *d_; }
  const Callable& as_callable() const { return *c_; }
  const std::string& undefined_hint() const;
  bool same_object(const Value& o) const;  // Python `is` for containers and callables

  bool truthy() const;           // bool(x); Undefined is falsy
  std::string str() const;       // str(x); Undefined renders as ""
  std::string repr() const;      // repr(x)
  std::string type_name() const; // Python's type name: str, int, dict, NoneType, ...

 private:
  Type type_ = Type::Undefined;
  uint8_t sub_ = 0;  // ViewKind of a View
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<const std::string> s_;  // String; hint of Undefined; repr of range; iterator type
  std::shared_ptr<IterState> it_;
  std::shared_ptr<const List> l_;
  std::shared_ptr<Dict> d_;
  std::shared_ptr<const Callable> c_;
};

enum class DictKind : uint8_t { Dict, Namespace, Loop };

// Insertion-ordered mapping (Python dicts keep insertion order); keys are usually strings.
struct Dict {
  DictKind kind = DictKind::Dict;
  std::vector<std::pair<Value, Value>> items;

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  const Value* find(const char* key) const { return find(std::string_view(key)); }
  void set(Value key, Value value);  // replaces an equal key in place, else appends
};

std::shared_ptr<Dict> make_dict(DictKind kind = DictKind::Dict);

// Python `a == b` (1 == 1.0 == True; lists and dicts compare by content).
bool py_equal(const Value& a, const Value& b);
// Python ordering for <, >, <=, >=: numbers, strings (code-point order), lists lexicographic.
// Returns <0, 0, >0; throws JinjaError "'<' not supported between instances of ..." otherwise.
int py_compare(const Value& a, const Value& b, std::string_view op = "<");

// Python `json.dumps(x, ensure_ascii, indent, separators, sort_keys)` as transformers' tojson.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // unset: one line; "" for indent=0 (newlines only)
  std::optional<std::pair<std::string, std::string>> separators;  // item, key
  bool sort_keys = false;
};
std::string json_dumps(const Value& v, const JsonDumpOptions& opt = {});

// Converts caller data; object key order is kept as the json type keeps it (ordered_json
// keeps insertion order as Python does, nlohmann::json sorts keys).
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

// Binds call arguments to a Python-style signature `name(p0, p1=..., ...)`: result[i] is the
// value passed for params[i] (positionally or by keyword), unset when not passed. Throws
// JinjaError for too many positional arguments, unknown or repeated keywords, and missing
// required ones (the first `n_required` params).
std::vector<std::optional<Value>> bind_args(std::string_view fn, const CallArgs& args,
                                            std::initializer_list<std::string_view> params,
                                            size_t n_required = 0);

}  // namespace tpro::jinja
