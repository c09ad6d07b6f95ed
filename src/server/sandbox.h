// The folders `tpro serve` may touch: base models (--models), datasets and format files
// (--data) and adapters (--loras). Every path in a request is resolved against one of them
// with every symlink followed (also a dangling one in the part still to be created, which a
// later mkdir or open would follow), and must stay inside it: "../" and links pointing out are
// refused with an HTTP 400 naming the field; so are links inside a folder the job will read
// or write (adapter folders, model folders) that lead out. Not here: what the files contain.
#pragma once
#include <filesystem>
#include <string>

namespace tpro {

enum class Root { Models, Data, Loras };

// p with every symlink followed, like realpath(3), except that the part that does not exist
// is kept as written (normalised); a dangling link on the way is followed to its target too.
// Throws Error on a link loop (more than 40 links) or an unreadable link.
std::filesystem::path resolve_links(const std::filesystem::path& p);
const char* root_name(Root r);  // "models", "data", "loras"

class PathSandbox {
 public:
  // Each folder must exist (Error naming the flag otherwise); they are made canonical here.
  PathSandbox(const std::filesystem::path& models, const std::filesystem::path& data,
              const std::filesystem::path& loras);
  const std::filesystem::path& root(Root r) const;

  // `user_path` is relative to the root or absolute. must_exist: the file or folder must
  // exist; otherwise only the existing part of the path is resolved (a folder to create).
  // Throws ApiError 400 for `field` when the path is empty, missing, or outside the root.
  std::filesystem::path resolve(Root r, const std::string& user_path, const std::string& field,
                                bool must_exist = true) const;
  // True when p (canonical) is the root or below it.
  bool contains(Root r, const std::filesystem::path& canonical) const;
  // Every symlink below `dir` (down to max_depth folders; 0 = its own entries) must lead to a
  // place inside the root; links to folders are not descended into. ApiError 400 for `field`
  // naming the first link that leads out, and when dir holds more than kMaxCheckedEntries.
  void check_links(Root r, const std::filesystem::path& dir, const std::string& field, int max_depth) const;
  // One file the server reads or writes at a fixed place (evaluations.csv): 400 when it is a
  // link that leads out of the root.
  void check_file(Root r, const std::filesystem::path& file, const std::string& field) const;
  static constexpr size_t kMaxCheckedEntries = 100000;
  // The path shown to users: relative to its root when inside it.
  std::string display(Root r, const std::filesystem::path& p) const;

 private:
  std::filesystem::path roots_[3];
};

}  // namespace tpro
