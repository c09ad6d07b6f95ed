// Jinja interpreter (see render.h): statements write into an output string, expressions
// evaluate to Values. A JinjaError without a position gets the innermost failing node's line
// and column on its way out. Scopes live in a deque owned by the render, so macros can hold
// plain pointers to them; each loop iteration and macro call frees its scopes when it ends
// (ScopeMark), so a long loop runs in constant memory. Steps and recursion depth (across macro
// calls) are budgeted (limits.h).
#include "jinja/render.h"

#include <deque>

#include "jinja/builtins.h"
#include "jinja/limits.h"

namespace tpro::jinja {

namespace {

constexpr int kMaxCallDepth = 200;  // macro recursion; Python would overflow its stack too

struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent) {
      for (const auto& kv : s->vars) {
        if (kv.first == name) return &kv.second;
      }
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) {
    for (auto& kv : vars) {
      if (kv.first == name) {
        kv.second = std::move(v);
        return;
      }
    }
    vars.emplace_back(name, std::move(v));
  }
};

enum class Flow { Normal, Break, Continue };

template <typename Node>
[[noreturn]] void rethrow_located(JinjaError& e, const Node& n) {
  if (!e.located()) {
    e.line = n.line;
    e.col = n.col;
  }
  throw;
}

class Renderer {
 public:
  RenderResult run(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& globals) {
    MeterScope metered(meter_);
    Scope* root = new_scope(nullptr);
    for (const auto& [name, value] : globals) root->set(name, value);
    RenderResult result;
    root_out_ = &result.text;
    exec_body(tmpl.body, root, result.text);
    result.generation_spans = std::move(spans_);
    return result;
  }

 private:
  std::deque<Scope> scopes_;
  std::string* root_out_ = nullptr;
  std::vector<std::pair<size_t, size_t>> spans_;
  int depth_ = 0;   // macro calls
  int levels_ = 0;  // exec and eval calls inside each other (the stack), across macro calls
  RenderMeter meter_;
  // Scopes can be referenced after they end only by a macro (it keeps its defining scope), and
  // a value outlives the scopes made after a mark only through a namespace attribute or
  // loop.changed ("escapes").
  uint64_t macros_made_ = 0;
  uint64_t escapes_ = 0;

  // Frees the scopes made since construction when the region ends, unless a macro made in
  // the region may have escaped it (then they stay until the render ends).
  class ScopeMark {
   public:
    explicit ScopeMark(Renderer& r) : r_(r), size_(r.scopes_.size()), macros_(r.macros_made_), escapes_(r.escapes_) {}
    ~ScopeMark() {
      if (r_.macros_made_ == macros_ || r_.escapes_ == escapes_) r_.scopes_.resize(size_);
    }
    ScopeMark(const ScopeMark&) = delete;
    ScopeMark& operator=(const ScopeMark&) = delete;

   private:
    Renderer& r_;
    size_t size_;
    uint64_t macros_, escapes_;
  };

  // One exec or eval level for the lifetime of the object; fails past kMaxRenderDepth.
  class Level {
   public:
    explicit Level(Renderer& r) : r_(r) {
      check_render_depth(r.levels_ + 1);
      ++r.levels_;
    }
    ~Level() { --r_.levels_; }
    Level(const Level&) = delete;
    Level& operator=(const Level&) = delete;

   private:
    Renderer& r_;
  };

  Scope* new_scope(Scope* parent) {
    check_live_scopes(scopes_.size() + 1);
    scopes_.emplace_back();
    scopes_.back().parent = parent;
    return &scopes_.back();
  }

  // Appends to a statement's output: no output buffer grows past kMaxStringBytes.
  static void emit(std::string& out, std::string_view piece) {
    check_string(uint64_t(out.size()) + piece.size(), "the template's output");
    charge_built(piece.size());
    out += piece;
  }

  Flow exec_body(const Body& body, Scope* scope, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, scope, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, Scope* scope, std::string& out) {
    try {
      Level level(*this);
      count_step();
      return exec_inner(s, scope, out);
    } catch (JinjaError& e) {
      rethrow_located(e, s);
    }
  }

  std::string capture(const Body& body, Scope* scope) {
    std::string out;
    exec_body(body, scope, out);
    return out;
  }

  Flow exec_inner(const Stmt& s, Scope* scope, std::string& out);
  Flow exec_for(const Stmt& s, Scope* scope, std::string& out);
  void bind_targets(const Stmt& s, Scope* scope, const Value& v);
  void assign(const Stmt& s, Scope* scope, Value v);
  Value make_macro(const Stmt& s, Scope* defining, const std::string& display);
  Value call_macro(const Stmt& s, Scope* defining, const std::string& display, CallArgs& a);
  Value exec_call_block(const Stmt& s, Scope* scope);

  Value eval(const Expr& e, Scope* scope) {
    try {
      Level level(*this);
      return eval_inner(e, scope);
    } catch (JinjaError& err) {
      rethrow_located(err, e);
    }
  }
  Value eval_inner(const Expr& e, Scope* scope);
  Value eval_binary(const Expr& e, Scope* scope);
  Value eval_compare(const Expr& e, Scope* scope);
  CallArgs eval_args(const CallSpec& spec, Scope* scope);
  Value call_value(const Value& callee, CallArgs& args);
  Value apply_filter(const Expr& e, Scope* scope, const Value* seed);
};

Flow Renderer::exec_inner(const Stmt& s, Scope* scope, std::string& out) {
  switch (s.kind) {
    case StmtKind::Text: emit(out, s.text); return Flow::Normal;
    case StmtKind::Print: emit(out, eval(*s.expr, scope).str()); return Flow::Normal;
    case StmtKind::If:
      for (const auto& [cond, body] : s.branches) {
        if (eval(*cond, scope).truthy()) return exec_body(body, scope, out);
      }
      return exec_body(s.else_body, scope, out);
    case StmtKind::For: return exec_for(s, scope, out);
    case StmtKind::Set: assign(s, scope, eval(*s.expr, scope)); return Flow::Normal;
    case StmtKind::SetBlock: {
      Value v(capture(s.body, new_scope(scope)));
      assign(s, scope, s.filter ? apply_filter(*s.filter, scope, &v) : v);
      return Flow::Normal;
    }
    case StmtKind::Macro: scope->set(s.text, make_macro(s, scope, "macro '" + s.text + "'")); return Flow::Normal;
    case StmtKind::CallBlock: emit(out, exec_call_block(s, scope).str()); return Flow::Normal;
    case StmtKind::FilterBlock: {
      Value v(capture(s.body, new_scope(scope)));
      emit(out, apply_filter(*s.filter, scope, &v).str());
      return Flow::Normal;
    }
    case StmtKind::With: {
      Scope* inner = new_scope(scope);
      for (const auto& [name, value] : s.assigns) inner->set(name, eval(*value, scope));
      return exec_body(s.body, inner, out);
    }
    case StmtKind::Generation: {
      size_t begin = out.size();
      exec_body(s.body, new_scope(scope), out);
      if (&out == root_out_) spans_.emplace_back(begin, out.size());
      return Flow::Normal;
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

void Renderer::bind_targets(const Stmt& s, Scope* scope, const Value& v) {
  if (!s.unpack) {
    scope->set(s.targets[0], v);
    return;
  }
  if (!v.is_list() && !v.is_string() && !v.is_mapping() && !v.is_view() && !v.is_iterator()) {
    jinja_fail("cannot unpack non-iterable ", v.type_name(), " object");
  }
  List items = iterate(v);
  if (items.size() != s.targets.size()) {
    if (items.size() > s.targets.size()) jinja_fail("too many values to unpack (expected ", s.targets.size(), ")");
    jinja_fail("not enough values to unpack (expected ", s.targets.size(), ", got ", items.size(), ")");
  }
  for (size_t i = 0; i < items.size(); ++i) scope->set(s.targets[i], items[i]);
}

void Renderer::assign(const Stmt& s, Scope* scope, Value v) {
  if (s.attr.empty()) {
    bind_targets(s, scope, v);
    return;
  }
  const Value* ns = scope->find(s.targets[0]);
  if (!ns) jinja_fail("'", s.targets[0], "' is undefined");
  if (!ns->is_dict() || ns->as_dict().kind != DictKind::Namespace) {
    jinja_fail("cannot assign attribute on non-namespace object '", s.targets[0], "' (a ", ns->type_name(),
               "; hint: create it with namespace())");
  }
  ++escapes_;
  ns->as_dict().set(Value(s.attr), std::move(v));
}

// `escapes` counts loop.changed calls: they keep their arguments beyond the iteration. Not
// inlined: its temporaries (kilobytes) would sit in every nested statement's stack frame.
[[gnu::noinline]] Value make_loop(const List& items, size_t i, const std::shared_ptr<std::optional<List>>& last_changed, uint64_t* escapes) {
  auto d = make_dict(DictKind::Loop);
  int64_t n = static_cast<int64_t>(items.size()), k = static_cast<int64_t>(i);
  d->items = {{Value("index"), Value(k + 1)},         {Value("index0"), Value(k)},
              {Value("revindex"), Value(n - k)},      {Value("revindex0"), Value(n - k - 1)},
              {Value("first"), Value(k == 0)},        {Value("last"), Value(k == n - 1)},
              {Value("length"), Value(n)},            {Value("depth"), Value(int64_t{1})},
              {Value("depth0"), Value(int64_t{0})}};
  d->items.emplace_back(Value("previtem"), k > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  d->items.emplace_back(Value("nextitem"), k + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
  d->items.emplace_back(Value("cycle"), Value::callable("loop.cycle", [k](CallArgs& a) {
                          if (!a.kw.empty()) jinja_fail("loop.cycle() takes no keyword arguments");
                          if (a.pos.empty()) jinja_fail("no items for cycling given");
                          return a.pos[static_cast<size_t>(k) % a.pos.size()];
                        }));
  d->items.emplace_back(Value("changed"), Value::callable("loop.changed", [last_changed, escapes](CallArgs& a) {
                          ++*escapes;
                          if (*last_changed && py_equal(Value::tuple(**last_changed), Value::tuple(a.pos))) return Value(false);
                          *last_changed = a.pos;
                          return Value(true);
                        }));
  return Value::dict(d);
}

Flow Renderer::exec_for(const Stmt& s, Scope* scope, std::string& out) {
  List items = iterate(eval(*s.expr, scope));
  if (s.cond) {  // {% for x in xs if cond %}: filtered before loop.length is known
    List kept;
    for (const Value& item : items) {
      ScopeMark mark(*this);
      Scope* probe = new_scope(scope);
      bind_targets(s, probe, item);
      if (eval(*s.cond, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body, new_scope(scope), out);
  auto last_changed = std::make_shared<std::optional<List>>();
  for (size_t i = 0; i < items.size(); ++i) {
    count_step();
    ScopeMark mark(*this);
    Scope* it = new_scope(scope);
    it->set("loop", make_loop(items, i, last_changed, &escapes_));
    bind_targets(s, it, items[i]);
    if (exec_body(s.body, it, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

Value Renderer::make_macro(const Stmt& s, Scope* defining, const std::string& display) {
  ++macros_made_;
  return Value::callable(display, [this, &s, defining, display](CallArgs& a) {
    return call_macro(s, defining, display, a);
  });
}

Value Renderer::call_macro(const Stmt& s, Scope* defining, const std::string& display, CallArgs& a) {
  if (depth_ >= kMaxCallDepth) jinja_fail("maximum macro recursion depth (", kMaxCallDepth, ") exceeded in ", display);
  count_step();
  ScopeMark mark(*this);
  Scope* scope = new_scope(defining);
  std::vector<std::pair<std::string, Value>> kw = a.kw;
  auto take_kw = [&](const std::string& name) -> std::optional<Value> {
    for (auto it = kw.begin(); it != kw.end(); ++it) {
      if (it->first != name) continue;
      Value v = it->second;
      kw.erase(it);
      return v;
    }
    return std::nullopt;
  };
  std::vector<const Param*> pending;  // defaults, evaluated once every parameter is bound
  for (size_t i = 0; i < s.params.size(); ++i) {
    const Param& p = s.params[i];
    std::optional<Value> v = i < a.pos.size() ? std::optional<Value>(a.pos[i]) : take_kw(p.name);
    if (v) {
      scope->set(p.name, *v);
    } else if (p.default_value) {
      pending.push_back(&p);
    } else {
      scope->set(p.name, Value::undefined("parameter '" + p.name + "' was not provided"));
    }
  }
  if (s.uses_caller) {
    std::optional<Value> caller = take_kw("caller");
    scope->set("caller", caller ? *caller : Value::undefined("No caller defined"));
  }
  if (s.uses_kwargs) {
    auto d = make_dict();
    for (auto& [k, v] : kw) d->set(Value(k), v);
    scope->set("kwargs", Value::dict(d));
  } else if (!kw.empty()) {
    jinja_fail(display, " takes no keyword argument '", kw[0].first, "'");
  }
  if (s.uses_varargs) {
    scope->set("varargs", Value::tuple(a.pos.size() > s.params.size() ? List(a.pos.begin() + s.params.size(), a.pos.end()) : List{}));
  } else if (a.pos.size() > s.params.size()) {
    jinja_fail(display, " takes not more than ", s.params.size(), " argument(s)");
  }
  for (const Param* p : pending) scope->set(p->name, eval(*p->default_value, scope));
  ++depth_;
  std::string out;
  try {
    exec_body(s.body, scope, out);
  } catch (...) {
    --depth_;
    throw;
  }
  --depth_;
  return Value(std::move(out));
}

Value Renderer::exec_call_block(const Stmt& s, Scope* scope) {
  const Expr& call = *s.expr;
  Value callee = eval(*call.args[0], scope);
  CallArgs args = eval_args(call.call, scope);
  args.kw.emplace_back("caller", make_macro(s, scope, "caller"));
  try {
    return call_value(callee, args);
  } catch (JinjaError& e) {
    rethrow_located(e, call);
  }
}

CallArgs Renderer::eval_args(const CallSpec& spec, Scope* scope) {
  CallArgs a;
  for (const auto& p : spec.pos) a.pos.push_back(eval(*p, scope));
  if (spec.star) {
    Value extra = eval(*spec.star, scope);
    if (!extra.is_list()) jinja_fail("argument after * must be an iterable, not ", extra.type_name());
    a.pos.insert(a.pos.end(), extra.as_list().begin(), extra.as_list().end());
  }
  auto add_kw = [&](const std::string& k, Value v) {
    for (const auto& kv : a.kw) {
      if (kv.first == k) jinja_fail("got multiple values for keyword argument '", k, "'");
    }
    a.kw.emplace_back(k, std::move(v));
  };
  for (const auto& [k, v] : spec.kw) add_kw(k, eval(*v, scope));
  if (spec.star_star) {
    Value extra = eval(*spec.star_star, scope);
    if (!extra.is_mapping()) jinja_fail("argument after ** must be a mapping, not ", extra.type_name());
    for (const auto& [k, v] : extra.as_dict().items) {
      if (!k.is_string()) jinja_fail("keywords must be strings");
      add_kw(k.as_string(), v);
    }
  }
  return a;
}

Value Renderer::call_value(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) jinja_fail(callee.undefined_hint());
  if (!callee.is_callable()) jinja_fail("'", callee.type_name(), "' object is not callable");
  return callee.as_callable().fn(args);
}

Value Renderer::apply_filter(const Expr& e, Scope* scope, const Value* seed) {
  // In {% filter a | b %} and {% set x | a %} the chain bottoms out in the block's text.
  Value operand;
  if (!e.args[0]) {
    operand = *seed;
  } else if (seed) {
    Level level(*this);
    operand = apply_filter(*e.args[0], scope, seed);
  } else {
    operand = eval(*e.args[0], scope);
  }
  CallArgs args = eval_args(e.call, scope);
  try {
    if (!e.filter) {  // unknown, in a conditional branch that runs (as Jinja: an error only now)
      const std::string why = unsupported_filter_reason(e.name);
      jinja_fail(why.empty() ? "unknown filter '" + e.name + "'" : why);
    }
    return e.filter(operand, args);
  } catch (JinjaError& err) {
    rethrow_located(err, e);
  }
}

Value Renderer::eval_inner(const Expr& e, Scope* scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: {
      const Value* v = scope->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List: case ExprKind::Tuple: {
      List items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      auto d = make_dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) d->set(eval(*e.args[i], scope), eval(*e.args[i + 1], scope));
      return Value::dict(d);
    }
    case ExprKind::Getattr: return get_attr(eval(*e.args[0], scope), e.name);
    case ExprKind::Getitem: {
      Value obj = eval(*e.args[0], scope);
      const Expr& idx = *e.args[1];
      if (idx.kind != ExprKind::Slice) return get_item(obj, eval(idx, scope));
      auto part = [&](size_t i) { return idx.args[i] ? eval(*idx.args[i], scope) : Value(); };
      return get_slice(obj, part(0), part(1), part(2));
    }
    case ExprKind::Slice: jinja_fail("a slice is only valid inside []");
    case ExprKind::Call: {
      Value callee = eval(*e.args[0], scope);
      CallArgs args = eval_args(e.call, scope);
      return call_value(callee, args);
    }
    case ExprKind::Filter: return apply_filter(e, scope, nullptr);
    case ExprKind::Test: {
      Value operand = eval(*e.args[0], scope);
      CallArgs args = eval_args(e.call, scope);
      return Value(e.test(operand, args) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.args[0], scope);
      return e.name == "not" ? Value(!v.truthy()) : unary_op(e.name, v);
    }
    case ExprKind::Binary: return eval_binary(e, scope);
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::CondExpr:
      if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
      if (e.args[2]) return eval(*e.args[2], scope);
      return Value::undefined(cat("the inline if-expression on line ", e.line,
                                  " evaluated to false and no else section was defined."));
  }
  jinja_fail("unknown expression");
}

Value Renderer::eval_binary(const Expr& e, Scope* scope) {
  Value left = eval(*e.args[0], scope);
  if (e.name == "and") return left.truthy() ? eval(*e.args[1], scope) : left;
  if (e.name == "or") return left.truthy() ? left : eval(*e.args[1], scope);
  return binary_op(e.name, left, eval(*e.args[1], scope));
}

Value Renderer::eval_compare(const Expr& e, Scope* scope) {
  Value left = eval(*e.args[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], scope);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = py_equal(left, right);
    else if (op == "!=") ok = !py_equal(left, right);
    else if (op == "in") ok = contains(right, left);
    else if (op == "notin") ok = !contains(right, left);
    else {
      int c = py_compare(left, right, op);
      ok = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace

RenderResult render_template(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& globals) {
  std::vector<std::pair<std::string, Value>> all;
  add_builtin_globals(all);
  all.insert(all.end(), globals.begin(), globals.end());
  return Renderer().run(tmpl, all);
}

}  // namespace tpro::jinja
