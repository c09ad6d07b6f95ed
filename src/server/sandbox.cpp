// Path resolution inside the served folders; see sandbox.h.
#include "server/sandbox.h"

#include <algorithm>

#include "core/error.h"
#include "server/api_error.h"

namespace tpro {

namespace fs = std::filesystem;

const char* root_name(Root r) {
  switch (r) {
    case Root::Models: return "models";
    case Root::Data: return "data";
    case Root::Loras: return "loras";
  }
  return "?";
}

namespace {

fs::path canonical_root(const fs::path& p, const char* flag) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  if (ec || !fs::is_directory(c))
    fail(flag, ": '", p.string(), "' is not an existing folder", ec ? " (" + ec.message() + ")" : std::string());
  return c;
}

}  // namespace

PathSandbox::PathSandbox(const fs::path& models, const fs::path& data, const fs::path& loras)
    : roots_{canonical_root(models, "--models"), canonical_root(data, "--data"), canonical_root(loras, "--loras")} {}

const fs::path& PathSandbox::root(Root r) const { return roots_[int(r)]; }

bool PathSandbox::contains(Root r, const fs::path& canonical) const {
  const fs::path& base = root(r);
  auto [b, p] = std::mismatch(base.begin(), base.end(), canonical.begin(), canonical.end());
  return b == base.end();
}

fs::path PathSandbox::resolve(Root r, const std::string& user_path, const std::string& field,
                              bool must_exist) const {
  const char* name = root_name(r);
  if (user_path.empty()) bad_request(field, cat(field, " is empty: choose a path in the ", name, " folder"));
  if (user_path.find('\0') != std::string::npos) bad_request(field, cat(field, " contains a NUL byte"));
  const fs::path given(user_path);
  const fs::path joined = given.is_absolute() ? given : root(r) / given;
  // Containment first, on the path with its existing part's links resolved, so a path that
  // leaves the folder is reported as such whether or not it exists.
  std::error_code ec;
  fs::path c = fs::weakly_canonical(joined, ec);
  if (ec) bad_request(field, cat(field, ": cannot resolve '", user_path, "': ", ec.message()));
  auto outside = [&] {
    bad_request(field, cat(field, ": '", user_path, "' is outside the ", name, " folder ", root(r).string(),
                           " (hint: tpro serve only reads and writes inside --models, --data and --loras)"));
  };
  if (!contains(r, c)) outside();
  if (must_exist) {
    c = fs::canonical(joined, ec);
    if (ec)
      bad_request(field, cat(field, ": '", user_path, "' does not exist in the ", name, " folder ", root(r).string()));
    if (!contains(r, c)) outside();  // a link inside the folder that points out of it
  }
  return c;
}

std::string PathSandbox::display(Root r, const fs::path& p) const {
  if (!contains(r, p)) return p.string();
  fs::path rel = p.lexically_relative(root(r));
  return rel.empty() || rel == "." ? std::string(".") : rel.string();
}

}  // namespace tpro
