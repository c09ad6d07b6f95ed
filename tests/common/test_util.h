// Helpers shared by every test binary: the message of the tpro::Error a call throws (tests
// assert messages, not just that something failed) and a fresh scratch folder.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"

namespace tpro::test {

// The what() of the tpro::Error f throws, or "(no error)" when it returns normally.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// <tmp>/tpro_<name>, emptied.
inline std::filesystem::path fresh_dir(const std::string& name) {
  std::filesystem::path d = std::filesystem::temp_directory_path() / ("tpro_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace tpro::test
