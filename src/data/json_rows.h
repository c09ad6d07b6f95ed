// Dataset rows from a JSON array file or a true JSON Lines file (one object per line), each
// row remembering where it came from so every later error can say "file:line" or "file row N".
// A malformed JSONL line is an error naming the file and line, or, with skip_bad_lines, is
// skipped and counted. Keys keep their file order (ordered_json).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpro {

struct JsonRow {
  nlohmann::ordered_json value;  // an object
  std::string where;             // "data.jsonl:7" or "data.json row 3" for messages
};

struct JsonRows {
  std::vector<JsonRow> rows;
  int64_t skipped = 0;  // bad lines skipped (skip_bad_lines)
};

// Parses file contents; `origin` is the file name used in messages.
JsonRows parse_json_rows(std::string_view text, const std::string& origin, bool skip_bad_lines);
// Reads, validates (exists, UTF-8, not binary) and parses a dataset file.
JsonRows read_json_rows(const std::filesystem::path& path, bool skip_bad_lines);

}  // namespace tpro
