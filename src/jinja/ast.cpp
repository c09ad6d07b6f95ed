// Walks over a parsed Jinja tree (see ast.h). Recursive: the parser bounds the tree's
// depth (kMaxAstDepth), so these stay well within the stack.
#include "jinja/ast.h"

namespace tpro::jinja {

bool expr_uses(const Expr* e, const std::string& name) {
  if (!e) return false;
  if (e->kind == ExprKind::Name && e->name == name) return true;
  for (const auto& a : e->args) {
    if (expr_uses(a.get(), name)) return true;
  }
  for (const auto& a : e->call.pos) {
    if (expr_uses(a.get(), name)) return true;
  }
  for (const auto& kv : e->call.kw) {
    if (expr_uses(kv.second.get(), name)) return true;
  }
  return expr_uses(e->call.star.get(), name) || expr_uses(e->call.star_star.get(), name);
}

bool body_uses(const Body& body, const std::string& name) {
  for (const auto& s : body) {
    if (expr_uses(s->expr.get(), name) || expr_uses(s->cond.get(), name) || expr_uses(s->filter.get(), name)) {
      return true;
    }
    for (const auto& br : s->branches) {
      if (expr_uses(br.first.get(), name) || body_uses(br.second, name)) return true;
    }
    for (const auto& p : s->params) {
      if (expr_uses(p.default_value.get(), name)) return true;
    }
    for (const auto& a : s->assigns) {
      if (expr_uses(a.second.get(), name)) return true;
    }
    if (body_uses(s->body, name) || body_uses(s->else_body, name)) return true;
  }
  return false;
}

}  // namespace tpro::jinja
