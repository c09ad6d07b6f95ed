// Syntax tree of a parsed Jinja template: expressions and statements as plain structs with a
// kind tag and the source position every runtime error is reported at. Filters and tests are
// resolved to function pointers at parse time, so an unknown one fails before rendering. The
// parser bounds the tree's depth (kMaxAstDepth), so walking or freeing it recursively is safe.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace tpro::jinja {

using FilterFn = Value (*)(const Value& operand, CallArgs& args);
using TestFn = bool (*)(const Value& operand, CallArgs& args);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind : uint8_t {
  Literal,   // value
  Name,      // name
  List,      // args: items
  Tuple,     // args: items
  Dict,      // args: key0, value0, key1, value1, ...
  Getattr,   // args[0] . name
  Getitem,   // args[0] [ args[1] ]
  Slice,     // args: start, stop, step (each may be null); only as a Getitem index
  Call,      // args[0] callee; call: arguments
  Filter,    // name, filter; args[0] operand (null for the {% filter %} block seed); call
  Test,      // name, test, negated; args[0] operand; call
  Unary,     // name: "-", "+", "not"; args[0]
  Binary,    // name: + - * / // % ** ~ and or; args[0], args[1]
  Compare,   // args: operands (n+1); ops: n of == != < > <= >= in notin
  CondExpr,  // args: value_if_true, condition, value_if_false (may be null)
};

struct CallSpec {
  std::vector<ExprPtr> pos;
  std::vector<std::pair<std::string, ExprPtr>> kw;
  ExprPtr star;      // *args
  ExprPtr star_star; // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::Literal;
  int line = 0, col = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::string> ops;
  CallSpec call;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
  bool negated = false;
  int height = 1;  // levels of this subtree (a leaf is 1); the parser keeps it within kMaxAstDepth
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind : uint8_t {
  Text,         // text
  Print,        // expr
  If,           // branches (condition, body); else_body
  For,          // targets, expr (iterable), cond (inline if), body, else_body
  Set,          // targets (or targets[0] . attr), expr
  SetBlock,     // targets (or targets[0] . attr), body, filter (chain, may be null)
  Macro,        // text (name), params, body
  CallBlock,    // expr (the call), params (caller's), body
  FilterBlock,  // filter (chain with a null innermost operand), body
  With,         // assigns, body
  Generation,   // body: transformers' {% generation %}, rendered as is, span recorded
  Break,
  Continue,
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null: required
};

struct Stmt {
  StmtKind kind = StmtKind::Text;
  int line = 0, col = 0;
  std::string text;
  ExprPtr expr, cond, filter;
  std::vector<std::string> targets;
  bool unpack = false;  // targets came from a tuple: `for a, b in ...`
  std::string attr;     // `set ns.attr = ...`
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<Param> params;
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
  std::vector<std::pair<std::string, ExprPtr>> assigns;
};

struct Template {
  Body body;
};

// Whether a tree reads `name` (macros bind varargs/kwargs/caller only if their body uses them).
bool expr_uses(const Expr* e, const std::string& name);
bool body_uses(const Body& body, const std::string& name);

}  // namespace tpro::jinja
