// Jinja parser (see parser.h): recursive descent over the lexer's tokens, one function
// per grammar rule as in jinja2/parser.py, so precedence and tuple/slice rules match Jinja.
// Depth is bounded (kMaxAstDepth): `depth_` counts the blocks and sub-expressions the parser
// is inside (its recursion), and each finished node's height is added to it (chains such as
// a ~ b ~ c or x|f|g are built by loops, one level per link), so neither the parser nor any
// walk over the finished tree recurses deeper than the limit.
#include "jinja/parser.h"

#include <algorithm>
#include <functional>

#include "jinja/builtins.h"
#include "jinja/lexer.h"
#include "jinja/limits.h"

namespace tpro::jinja {

namespace {

using Names = std::vector<std::string>;

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Name: case TokenType::Op: return "'" + t.text + "'";
    case TokenType::String: return "string literal";
    case TokenType::Int: case TokenType::Float: return "number " + t.text;
    case TokenType::VarEnd: return "'}}'";
    case TokenType::BlockEnd: return "'%}'";
    default: return token_type_name(t.type);
  }
}

std::string quote_list(const Names& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "'" : i + 1 == names.size() ? "' or '" : "', '") + names[i];
  }
  return out + "'";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  std::unique_ptr<Template> run() {
    auto t = std::make_unique<Template>();
    t->body = subparse({}, "", toks_[0]);
    // As Jinja's compiler: an unknown filter is an error at once unless it sits in a
    // conditional (an if statement or an if expression), where it fails only if it runs.
    if (!unknown_filters_.empty()) {
      const Token& at = unknown_filters_.front();
      const std::string why = unsupported_filter_reason(at.text);
      fail_at(at, why.empty() ? "unknown filter '" + at.text + "'" : why);
    }
    return t;
  }

 private:
  struct OpenBlock {
    std::string name;
    Names end_names;
    int line;
  };
  std::vector<Token> toks_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;                // blocks and sub-expressions being parsed, inside each other
  int conditional_ = 0;          // > 0 inside an if statement or if expression
  std::vector<Token> unknown_filters_;  // unknown filters outside any conditional, in order
  std::vector<OpenBlock> open_;  // innermost last, for "unexpected end tag" messages

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(i_ + n, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) ++i_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::Name && cur().text == n; }
  bool skip_op(const char* op) { return is_op(op) ? (next(), true) : false; }
  bool skip_name(const char* n) { return is_name(n) ? (next(), true) : false; }

  [[noreturn]] void fail_at(const Token& t, const std::string& msg) const { throw JinjaError(msg, t.line, t.col); }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail_at(cur(), "expected " + expected + ", got " + describe(cur()));
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) unexpected(std::string("'") + op + "'");
  }
  const Token& expect_name() {
    if (cur().type != TokenType::Name) unexpected("a name");
    return next();
  }
  void expect_block_end(const char* what) {
    if (cur().type != TokenType::BlockEnd) unexpected(std::string("'%}' to end the '") + what + "' tag");
    next();
  }

  // One level deeper for the lifetime of the object: a nested block or sub-expression.
  class Nest {
   public:
    Nest(Parser& p, const Token& at) : p_(p), saved_(p.depth_) { check_ast_depth(++p.depth_, at.line, at.col); }
    ~Nest() { p_.depth_ = saved_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    Parser& p_;
    int saved_;
  };

  // Every node with children passes here once they are attached: its height is one more than
  // its tallest child's, and with the levels the parser is inside it stays within the limit.
  ExprPtr sealed(ExprPtr e) const {
    int h = 0;
    auto see = [&h](const ExprPtr& c) {
      if (c) h = std::max(h, c->height);
    };
    for (const auto& a : e->args) see(a);
    for (const auto& a : e->call.pos) see(a);
    for (const auto& kv : e->call.kw) see(kv.second);
    see(e->call.star);
    see(e->call.star_star);
    e->height = h + 1;
    check_ast_depth(depth_ + e->height, e->line, e->col);
    return e;
  }

  ExprPtr make(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  StmtPtr make_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->col = at.col;
    return s;
  }

  // ---- statements ----
  Body subparse(const Names& end_names, const std::string& block, const Token& opener);
  StmtPtr parse_statement();
  StmtPtr parse_if(const Token& at);
  StmtPtr parse_for(const Token& at);
  StmtPtr parse_set(const Token& at);
  StmtPtr parse_macro(const Token& at);
  StmtPtr parse_call_block(const Token& at);
  StmtPtr parse_filter_block(const Token& at);
  StmtPtr parse_with(const Token& at);
  std::vector<Param> parse_signature();
  void parse_targets(Stmt& s, bool allow_namespace, const char* end_name);
  Body parse_block_body(const std::string& tag, const Token& at);

  // ---- expressions ----
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_condexpr();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter = true);
  ExprPtr parse_primary();
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const char* extra_end, bool explicit_parens);
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  ExprPtr parse_call(ExprPtr callee);
  void parse_call_args(CallSpec& spec);
  ExprPtr parse_filter(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);
  ExprPtr binary(const char* op, ExprPtr a, ExprPtr b, const Token& at) {
    auto e = make(ExprKind::Binary, at);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return sealed(std::move(e));
  }
};

Body Parser::subparse(const Names& end_names, const std::string& block, const Token& opener) {
  Body body;
  if (!end_names.empty()) open_.push_back({block, end_names, opener.line});
  struct Pop {
    std::vector<OpenBlock>* v;
    bool active;
    ~Pop() {
      if (active) v->pop_back();
    }
  } pop{&open_, !end_names.empty()};
  while (true) {
    const Token& t = cur();
    if (t.type == TokenType::End) {
      if (end_names.empty()) return body;
      fail_at(opener, cat("unclosed '", block, "' block: expected ", quote_list(end_names),
                          " before the end of the template"));
    }
    if (t.type == TokenType::Data) {
      auto s = make_stmt(StmtKind::Text, t);
      s->text = next().text;
      body.push_back(std::move(s));
    } else if (t.type == TokenType::VarBegin) {
      Nest nest(*this, t);
      auto s = make_stmt(StmtKind::Print, next());
      if (cur().type == TokenType::VarEnd) unexpected("an expression");
      s->expr = parse_tuple(false, true, nullptr, false);
      if (cur().type != TokenType::VarEnd) unexpected("'}}'");
      next();
      body.push_back(std::move(s));
    } else if (t.type == TokenType::BlockBegin) {
      const Token& tag = peek();
      if (tag.type == TokenType::Name && std::find(end_names.begin(), end_names.end(), tag.text) != end_names.end()) {
        next();  // the caller reads the end tag's name
        return body;
      }
      body.push_back(parse_statement());
    } else {
      fail_at(t, "unexpected " + describe(t));
    }
  }
}

StmtPtr Parser::parse_statement() {
  next();  // {%
  const Token& at = cur();
  if (at.type != TokenType::Name) unexpected("a statement name");
  Nest nest(*this, at);
  const std::string tag = next().text;
  if (tag == "if") return parse_if(at);
  if (tag == "for") return parse_for(at);
  if (tag == "set") return parse_set(at);
  if (tag == "macro") return parse_macro(at);
  if (tag == "call") return parse_call_block(at);
  if (tag == "filter") return parse_filter_block(at);
  if (tag == "with") return parse_with(at);
  if (tag == "generation") {
    auto s = make_stmt(StmtKind::Generation, at);
    expect_block_end("generation");
    s->body = parse_block_body("generation", at);
    return s;
  }
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) fail_at(at, "'" + tag + "' outside of a for loop");
    auto s = make_stmt(tag == "break" ? StmtKind::Break : StmtKind::Continue, at);
    expect_block_end(tag.c_str());
    return s;
  }
  static const Names kUnsupported = {"extends", "block", "include", "import", "from", "do", "autoescape", "trans"};
  if (std::find(kUnsupported.begin(), kUnsupported.end(), tag) != kUnsupported.end()) {
    fail_at(at, "tag '" + tag + "' is not supported (hint: chat templates must be self-contained)");
  }
  if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") {
    if (open_.empty()) fail_at(at, "unexpected '" + tag + "' tag: there is no open block to end");
    const OpenBlock& b = open_.back();
    fail_at(at, cat("unexpected '", tag, "' tag: the innermost open block is '", b.name, "' from line ", b.line,
                    ", which expects ", quote_list(b.end_names)));
  }
  fail_at(at, "unknown tag '" + tag + "'");
}

// Body of a simple block up to its end tag, e.g. {% generation %}...{% endgeneration %}.
Body Parser::parse_block_body(const std::string& tag, const Token& at) {
  Body body = subparse({"end" + tag}, tag, at);
  next();  // end tag name
  expect_block_end(("end" + tag).c_str());
  return body;
}

StmtPtr Parser::parse_if(const Token& at) {
  ++conditional_;
  struct Leave {
    int& n;
    ~Leave() { --n; }
  } leave{conditional_};
  auto s = make_stmt(StmtKind::If, at);
  ExprPtr cond = parse_tuple(false, false, nullptr, false);
  expect_block_end("if");
  while (true) {
    Body body = subparse({"elif", "else", "endif"}, "if", at);
    s->branches.emplace_back(std::move(cond), std::move(body));
    std::string tag = next().text;
    if (tag == "elif") {
      cond = parse_tuple(false, false, nullptr, false);
      expect_block_end("elif");
      continue;
    }
    if (tag == "else") {
      expect_block_end("else");
      s->else_body = subparse({"endif"}, "if", at);
      next();
    }
    expect_block_end("endif");
    return s;
  }
}

void Parser::parse_targets(Stmt& s, bool allow_namespace, const char* end_name) {
  if (allow_namespace && cur().type == TokenType::Name && peek().type == TokenType::Op && peek().text == ".") {
    s.targets.push_back(next().text);
    next();
    s.attr = expect_name().text;
    return;
  }
  bool parens = skip_op("(");
  while (true) {
    const Token& t = expect_name();
    if (t.text == "true" || t.text == "false" || t.text == "none" || t.text == "True" || t.text == "False" ||
        t.text == "None") {
      fail_at(t, "cannot assign to '" + t.text + "'");
    }
    s.targets.push_back(t.text);
    if (!skip_op(",")) break;
    s.unpack = true;
    if (parens ? is_op(")") : (is_name(end_name) || is_op("="))) break;  // trailing comma
  }
  if (parens) {
    expect_op(")");
    s.unpack = true;
  }
}

StmtPtr Parser::parse_for(const Token& at) {
  auto s = make_stmt(StmtKind::For, at);
  parse_targets(*s, false, "in");
  if (!skip_name("in")) unexpected("'in'");
  s->expr = parse_tuple(false, false, "recursive", false);
  if (skip_name("if")) s->cond = parse_expression();
  if (is_name("recursive")) fail_at(cur(), "recursive for loops are not supported");
  expect_block_end("for");
  ++loop_depth_;
  s->body = subparse({"endfor", "else"}, "for", at);
  --loop_depth_;
  if (next().text == "else") {
    expect_block_end("else");
    s->else_body = subparse({"endfor"}, "for", at);
    next();
  }
  expect_block_end("endfor");
  return s;
}

StmtPtr Parser::parse_set(const Token& at) {
  auto s = make_stmt(StmtKind::Set, at);
  parse_targets(*s, true, "=");
  if (skip_op("=")) {
    s->expr = parse_tuple(false, true, nullptr, false);
    expect_block_end("set");
    return s;
  }
  if (s->unpack) unexpected("'=' after a tuple of names");
  s->kind = StmtKind::SetBlock;
  if (is_op("|")) s->filter = parse_filter(nullptr, false);
  expect_block_end("set");
  s->body = parse_block_body("set", at);
  return s;
}

std::vector<Param> Parser::parse_signature() {
  std::vector<Param> params;
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    Param p;
    const Token& t = expect_name();
    p.name = t.text;
    if (skip_op("=")) {
      p.default_value = parse_expression();
    } else if (!params.empty() && params.back().default_value) {
      fail_at(t, "non-default argument '" + p.name + "' follows default argument");
    }
    params.push_back(std::move(p));
  }
  next();
  return params;
}

StmtPtr Parser::parse_macro(const Token& at) {
  auto s = make_stmt(StmtKind::Macro, at);
  s->text = expect_name().text;
  s->params = parse_signature();
  expect_block_end("macro");
  int saved = loop_depth_;
  loop_depth_ = 0;  // break/continue cannot cross a macro boundary
  s->body = parse_block_body("macro", at);
  loop_depth_ = saved;
  auto declared = [&](const char* n) {
    return std::any_of(s->params.begin(), s->params.end(), [&](const Param& p) { return p.name == n; });
  };
  s->uses_varargs = !declared("varargs") && body_uses(s->body, "varargs");
  s->uses_kwargs = !declared("kwargs") && body_uses(s->body, "kwargs");
  s->uses_caller = !declared("caller") && body_uses(s->body, "caller");
  return s;
}

StmtPtr Parser::parse_call_block(const Token& at) {
  auto s = make_stmt(StmtKind::CallBlock, at);
  if (is_op("(")) s->params = parse_signature();
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::Call) fail_at(at, "'call' block expects a macro call, e.g. {% call m() %}");
  expect_block_end("call");
  int saved = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_block_body("call", at);
  loop_depth_ = saved;
  s->uses_varargs = body_uses(s->body, "varargs");
  s->uses_kwargs = body_uses(s->body, "kwargs");
  return s;
}

StmtPtr Parser::parse_filter_block(const Token& at) {
  auto s = make_stmt(StmtKind::FilterBlock, at);
  s->filter = parse_filter(nullptr, true);
  expect_block_end("filter");
  s->body = parse_block_body("filter", at);
  return s;
}

StmtPtr Parser::parse_with(const Token& at) {
  auto s = make_stmt(StmtKind::With, at);
  while (cur().type != TokenType::BlockEnd) {
    if (!s->assigns.empty()) expect_op(",");
    std::string name = expect_name().text;
    expect_op("=");
    s->assigns.emplace_back(name, parse_expression());
  }
  expect_block_end("with");
  s->body = parse_block_body("with", at);
  return s;
}

// ---- expressions ----

ExprPtr Parser::parse_expression(bool with_condexpr) {
  Nest nest(*this, cur());
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  const size_t unknown_before = unknown_filters_.size();
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    const Token& at = next();
    // `a if c else b` is conditional as a whole, its value `a` included (parsed above).
    unknown_filters_.resize(unknown_before);
    ++conditional_;
    struct Leave {
      int& n;
      ~Leave() { --n; }
    } leave{conditional_};
    auto e = make(ExprKind::CondExpr, at);
    ExprPtr cond = parse_or();
    ExprPtr otherwise;
    if (is_name("else")) {
      Nest nest(*this, next());  // a if b else c if d else ...: one level per else
      otherwise = parse_condexpr();
    }
    e->args.push_back(std::move(expr));
    e->args.push_back(std::move(cond));
    e->args.push_back(std::move(otherwise));
    expr = sealed(std::move(e));
  }
  return expr;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const Token& at = next();
    left = binary("or", std::move(left), parse_and(), at);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const Token& at = next();
    left = binary("and", std::move(left), parse_not(), at);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    const Token& at = next();
    auto e = make(ExprKind::Unary, at);
    e->name = "not";
    {
      Nest nest(*this, at);
      e->args.push_back(parse_not());
    }
    return sealed(std::move(e));
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  const Token& at = cur();
  ExprPtr first = parse_math1();
  auto e = make(ExprKind::Compare, at);
  e->args.push_back(std::move(first));
  while (true) {
    static const Names kCmp = {"==", "!=", "<", ">", "<=", ">="};
    if (cur().type == TokenType::Op && std::find(kCmp.begin(), kCmp.end(), cur().text) != kCmp.end()) {
      e->ops.push_back(next().text);
    } else if (skip_name("in")) {
      e->ops.push_back("in");
    } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
      next(), next();
      e->ops.push_back("notin");
    } else {
      break;
    }
    e->args.push_back(parse_math1());
  }
  if (e->ops.empty()) return std::move(e->args[0]);
  return sealed(std::move(e));
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& at = next();
    left = binary(at.text == "+" ? "+" : "-", std::move(left), parse_concat(), at);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const Token& at = next();
    left = binary("~", std::move(left), parse_math2(), at);
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& at = next();
    static const char* kOps[] = {"*", "/", "//", "%"};
    const char* op = *std::find_if(std::begin(kOps), std::end(kOps), [&](const char* o) { return at.text == o; });
    left = binary(op, std::move(left), parse_pow(), at);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary();
  while (is_op("**")) {
    const Token& at = next();
    left = binary("**", std::move(left), parse_unary(), at);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    const Token& at = next();
    node = make(ExprKind::Unary, at);
    node->name = at.text;
    {
      Nest nest(*this, at);
      node->args.push_back(parse_unary(false));
    }
    node = sealed(std::move(node));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  if (t.type == TokenType::Name) {
    next();
    auto e = make(ExprKind::Literal, t);
    if (t.text == "true" || t.text == "True") {
      e->value = Value(true);
    } else if (t.text == "false" || t.text == "False") {
      e->value = Value(false);
    } else if (t.text == "none" || t.text == "None") {
      e->value = Value::none();
    } else {
      e->kind = ExprKind::Name;
      e->name = t.text;
    }
    return e;
  }
  if (t.type == TokenType::String) {
    auto e = make(ExprKind::Literal, t);
    std::string s;
    while (cur().type == TokenType::String) s += next().text;  // adjacent literals concatenate
    e->value = Value(std::move(s));
    return e;
  }
  if (t.type == TokenType::Int || t.type == TokenType::Float) {
    auto e = make(ExprKind::Literal, next());
    e->value = t.type == TokenType::Int ? Value(t.int_value) : Value(t.float_value);
    return e;
  }
  if (is_op("(")) {
    next();
    ExprPtr e = parse_tuple(false, true, nullptr, true);
    expect_op(")");
    return e;
  }
  if (is_op("[")) return parse_list();
  if (is_op("{")) return parse_dict();
  unexpected("an expression");
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, const char* extra_end, bool explicit_parens) {
  const Token& at = cur();
  auto e = make(ExprKind::Tuple, at);
  bool is_tuple = false;
  while (true) {
    if (!e->args.empty()) expect_op(",");
    bool end = cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd || is_op(")") ||
               (extra_end && is_name(extra_end));
    if (end) break;
    e->args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (!is_op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!e->args.empty()) return std::move(e->args[0]);
    if (!explicit_parens) unexpected("an expression");
  }
  return sealed(std::move(e));
}

ExprPtr Parser::parse_list() {
  auto e = make(ExprKind::List, next());
  while (!is_op("]")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("]")) break;
    e->args.push_back(parse_expression());
  }
  next();
  return sealed(std::move(e));
}

ExprPtr Parser::parse_dict() {
  auto e = make(ExprKind::Dict, next());
  while (!is_op("}")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("}")) break;
    e->args.push_back(parse_expression());
    expect_op(":");
    e->args.push_back(parse_expression());
  }
  next();
  return sealed(std::move(e));
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter(std::move(node), false);
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& at = next();
  if (at.text == ".") {
    const Token& t = cur();
    if (t.type == TokenType::Name) {
      auto e = make(ExprKind::Getattr, next());
      e->name = t.text;
      e->args.push_back(std::move(node));
      return sealed(std::move(e));
    }
    if (t.type != TokenType::Int) unexpected("an attribute name or index after '.'");
    auto e = make(ExprKind::Getitem, t);
    auto idx = make(ExprKind::Literal, next());
    idx->value = Value(t.int_value);
    e->args.push_back(std::move(node));
    e->args.push_back(std::move(idx));
    return sealed(std::move(e));
  }
  auto e = make(ExprKind::Getitem, at);
  auto index = make(ExprKind::Tuple, at);
  while (!is_op("]")) {
    if (!index->args.empty()) expect_op(",");
    index->args.push_back(parse_subscribed());
  }
  next();
  e->args.push_back(std::move(node));
  if (index->args.empty()) fail_at(at, "expected an index or slice inside '[]'");
  e->args.push_back(index->args.size() == 1 ? std::move(index->args[0]) : sealed(std::move(index)));
  return sealed(std::move(e));
}

ExprPtr Parser::parse_subscribed() {
  const Token& at = cur();
  std::vector<ExprPtr> parts;
  if (skip_op(":")) {
    parts.push_back(nullptr);
  } else {
    ExprPtr first = parse_expression();
    if (!skip_op(":")) return first;
    parts.push_back(std::move(first));
  }
  auto bound_end = [&] { return is_op(":") || is_op("]") || is_op(","); };
  parts.push_back(bound_end() ? nullptr : parse_expression());
  if (skip_op(":")) {
    parts.push_back(is_op("]") || is_op(",") ? nullptr : parse_expression());
  } else {
    parts.push_back(nullptr);
  }
  auto e = make(ExprKind::Slice, at);
  e->args = std::move(parts);
  return sealed(std::move(e));
}

void Parser::parse_call_args(CallSpec& spec) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) {
      expect_op(",");
      if (is_op(")")) break;
    }
    first = false;
    if (skip_op("*")) {
      spec.star = parse_expression();
    } else if (skip_op("**")) {
      spec.star_star = parse_expression();
    } else if (cur().type == TokenType::Name && peek().type == TokenType::Op && peek().text == "=") {
      std::string key = next().text;
      next();
      spec.kw.emplace_back(key, parse_expression());
    } else {
      if (spec.star || spec.star_star || !spec.kw.empty()) {
        fail_at(cur(), "positional argument follows keyword argument");
      }
      spec.pos.push_back(parse_expression());
    }
  }
  next();
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  auto e = make(ExprKind::Call, cur());
  e->line = callee->line;
  e->col = callee->col;
  parse_call_args(e->call);
  e->args.push_back(std::move(callee));
  return sealed(std::move(e));
}

ExprPtr Parser::parse_filter(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    const Token& at = expect_name();
    auto e = make(ExprKind::Filter, at);
    e->name = at.text;
    while (skip_op(".")) e->name += "." + expect_name().text;
    e->filter = find_filter(e->name);
    if (!e->filter && conditional_ == 0) {  // an error at the end of parsing, unless an if expression claims it
      Token t = at;
      t.text = e->name;
      unknown_filters_.push_back(std::move(t));
    }
    if (is_op("(")) parse_call_args(e->call);
    e->args.push_back(std::move(node));
    node = sealed(std::move(e));
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  next();  // is
  bool negated = skip_name("not");
  const Token& at = expect_name();
  auto e = make(ExprKind::Test, at);
  e->name = at.text;
  while (skip_op(".")) e->name += "." + expect_name().text;
  e->negated = negated;
  e->test = find_test(e->name);
  if (!e->test) fail_at(at, "unknown test '" + e->name + "'");
  const Token& t = cur();
  bool arg_start = t.type == TokenType::Name || t.type == TokenType::String || t.type == TokenType::Int ||
                   t.type == TokenType::Float || is_op("[") || is_op("{");
  if (is_op("(")) {
    parse_call_args(e->call);
  } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail_at(t, "cannot chain multiple tests with 'is'");
    e->call.pos.push_back(parse_postfix(parse_primary()));
  }
  e->args.push_back(std::move(node));
  return sealed(std::move(e));
}

}  // namespace

std::unique_ptr<Template> parse_template(std::string_view source) { return Parser(tokenize(source)).run(); }

}  // namespace tpro::jinja
