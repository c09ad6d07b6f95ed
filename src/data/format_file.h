// Training PRO format files: a JSON object whose keys are comma-joined sets of dataset keys
// ("instruction,input,output") and whose values are templates with %key% placeholders. A row
// uses the first entry (file order) whose key set equals the row's keys with non-blank string
// values; each %key% is replaced once by that row's value (values are not re-scanned, unlike
// Training PRO's chained replace). No matching entry is an error naming the row and its keys.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpro {

struct FormatEntry {
  std::vector<std::string> keys;  // sorted, spaces around names trimmed
  std::string tmpl;
};

class FormatFile {
 public:
  static FormatFile load(const std::filesystem::path& path);
  static FormatFile parse(std::string_view json, const std::string& origin);

  // The prompt text for one row; `where` names the row in errors ("data.jsonl:4").
  std::string render(const nlohmann::ordered_json& row, const std::string& where) const;

  const std::vector<FormatEntry>& entries() const { return entries_; }
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  std::vector<FormatEntry> entries_;
};

}  // namespace tpro
