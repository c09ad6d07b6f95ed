// The folders `tpro serve` may touch: base models (--models), datasets and format files
// (--data) and adapters (--loras). Every path in a request is resolved against one of them
// with symlinks followed (realpath), and must stay inside it: "../" and links pointing out
// are refused with an HTTP 400 naming the field. Not here: what the files contain.
#pragma once
#include <filesystem>
#include <string>

namespace tpro {

enum class Root { Models, Data, Loras };
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
  // The path shown to users: relative to its root when inside it.
  std::string display(Root r, const std::filesystem::path& p) const;

 private:
  std::filesystem::path roots_[3];
};

}  // namespace tpro
