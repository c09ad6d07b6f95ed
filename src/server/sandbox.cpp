// Path resolution inside the served folders; see sandbox.h.
#include "server/sandbox.h"

#include "core/error.h"
#include "core/file.h"
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

constexpr int kMaxLinks = 40;  // what Linux follows before ELOOP
constexpr const char* kHint = " (hint: tpro serve only reads and writes inside --models, --data and --loras)";

fs::path canonical_root(const fs::path& p, const char* flag) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  if (ec || !fs::is_directory(c))
    fail(flag, ": '", p.string(), "' is not an existing folder", ec ? " (" + ec.message() + ")" : std::string());
  return c;
}

}  // namespace

fs::path resolve_links(const fs::path& start) {
  fs::path p = start;
  for (int hops = 0; hops <= kMaxLinks; ++hops) {
    const fs::path c = fs::weakly_canonical(p);
    // weakly_canonical resolved the part that exists; only its first missing component can
    // still be a link (a dangling one), which a later mkdir or open would follow.
    fs::path prefix;
    auto it = c.begin();
    bool link = false;
    for (; it != c.end(); ++it) {
      prefix /= *it;
      std::error_code ec;
      const fs::file_status st = fs::symlink_status(prefix, ec);
      if (ec || !fs::exists(st)) break;
      if ((link = fs::is_symlink(st))) break;
    }
    if (!link) return c;
    const fs::path target = fs::read_symlink(prefix);
    fs::path next = target.is_absolute() ? target : prefix.parent_path() / target;
    for (++it; it != c.end(); ++it) next /= *it;
    p = next;
  }
  fail("too many levels of symbolic links in ", start.string());
}

PathSandbox::PathSandbox(const fs::path& models, const fs::path& data, const fs::path& loras)
    : roots_{canonical_root(models, "--models"), canonical_root(data, "--data"), canonical_root(loras, "--loras")} {}

const fs::path& PathSandbox::root(Root r) const { return roots_[int(r)]; }

bool PathSandbox::contains(Root r, const fs::path& canonical) const { return is_within(root(r), canonical); }

fs::path PathSandbox::resolve(Root r, const std::string& user_path, const std::string& field,
                              bool must_exist) const {
  const char* name = root_name(r);
  if (user_path.empty()) bad_request(field, cat(field, " is empty: choose a path in the ", name, " folder"));
  if (user_path.find('\0') != std::string::npos) bad_request(field, cat(field, " contains a NUL byte"));
  const fs::path given(user_path);
  const fs::path joined = given.is_absolute() ? given : root(r) / given;
  // Containment first, on the path with every link resolved, so a path that leaves the
  // folder is reported as such whether or not it exists.
  fs::path c;
  try {
    c = resolve_links(joined);
  } catch (const std::exception& e) {
    bad_request(field, cat(field, ": cannot resolve '", user_path, "': ", e.what()));
  }
  if (!contains(r, c)) {
    // Say so when the path is inside as written and a link takes it out.
    const std::string via = is_within(root(r), joined.lexically_normal())
                                ? cat(" (a symlink on the way leads to ", c.string(), ")")
                                : std::string();
    bad_request(field,
                cat(field, ": '", user_path, "' is outside the ", name, " folder ", root(r).string(), via, kHint));
  }
  std::error_code ec;
  if (must_exist && !fs::exists(c, ec))
    bad_request(field, cat(field, ": '", user_path, "' does not exist in the ", name, " folder ", root(r).string()));
  return c;
}

void PathSandbox::check_links(Root r, const fs::path& dir, const std::string& field, int max_depth) const {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++n > kMaxCheckedEntries)
      bad_request(field, cat(field, ": '", display(r, dir), "' holds more than ", kMaxCheckedEntries,
                             " files; the server checks each for symlinks and stops there"));
    if (it.depth() >= max_depth) it.disable_recursion_pending();
    if (!it->is_symlink(ec) || ec) continue;
    check_file(r, it->path(), field);
  }
  if (ec) bad_request(field, cat(field, ": cannot list '", display(r, dir), "': ", ec.message()));
}

void PathSandbox::check_file(Root r, const fs::path& file, const std::string& field) const {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(file, ec))) return;
  fs::path to;
  try {
    to = resolve_links(file);
  } catch (const std::exception& e) {
    bad_request(field, cat(field, ": cannot resolve '", display(r, file), "': ", e.what()));
  }
  if (!contains(r, to))
    bad_request(field, cat(field, ": '", display(r, file), "' is a symlink that leads outside the ", root_name(r),
                           " folder ", root(r).string(), " (to ", to.string(), ")", kHint));
}

std::string PathSandbox::display(Root r, const fs::path& p) const {
  if (!contains(r, p)) return p.string();
  fs::path rel = p.lexically_relative(root(r));
  return rel.empty() || rel == "." ? std::string(".") : rel.string();
}

}  // namespace tpro
