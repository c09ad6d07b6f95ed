// Jinja's runtime semantics as free functions: attribute and item lookup (getattr first for
// `.`, getitem first for `[]`, as jinja2's environment does under transformers' immutable
// sandbox), operators, `in`, iteration, slicing, Python str/dict/list methods, the builtin
// filters and tests, and the global functions (range, namespace, dict, joiner).
#pragma once
#include <string>
#include <string_view>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace tpro::jinja {

// obj.name: a method, a dict key, a namespace/loop attribute, or Undefined with Jinja's hint.
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: an item (negative indices count from the end), else as get_attr for str keys.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] for str, list and tuple; unset bounds are Undefined or None.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value binary_op(std::string_view op, const Value& a, const Value& b);  // + - * / // % ** ~
Value unary_op(std::string_view op, const Value& a);                   // - +
bool contains(const Value& container, const Value& item);              // `item in container`
List iterate(const Value& v);  // what a for loop visits: items, dict keys, characters

// Bound method `name` of a str, dict or list value, or Undefined when it has none.
Value method_of(const Value& obj, const std::string& name);
// Python `fmt % args` (printf-style) for the `%` operator and the `format` filter.
std::string percent_format(const std::string& fmt, const Value& args);

FilterFn find_filter(std::string_view name);  // null when unknown
TestFn find_test(std::string_view name);
// Why a Jinja builtin filter/test is unavailable here ("" when it is not a Jinja builtin).
std::string unsupported_filter_reason(std::string_view name);

// range, namespace, dict and joiner (raise_exception and strftime_now come from the caller).
void add_builtin_globals(std::vector<std::pair<std::string, Value>>& globals);

// Jinja's attribute getter for filters (map, sort, selectattr...): "a.b" and "0" paths;
// `dflt` (map's default=) replaces an Undefined at every step.
Value get_attr_path(const Value& item, const Value& path, const Value* dflt = nullptr);

}  // namespace tpro::jinja
