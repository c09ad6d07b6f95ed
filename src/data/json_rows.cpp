// JSON array / JSON Lines dataset reading with file:line errors; see json_rows.h.
#include "data/json_rows.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/text_files.h"

namespace tpro {

namespace {

using ojson = nlohmann::ordered_json;

const char* type_name(const ojson& v) { return v.type_name(); }

// nlohmann's message without its "[json.exception...] parse error at line 1, column 5: " lead.
std::string detail(const ojson::exception& e) {
  std::string m = e.what();
  size_t b = m.find("] ");
  if (b != std::string::npos) m = m.substr(b + 2);
  if (m.rfind("parse error at ", 0) == 0) {
    size_t c = m.find(": ");
    if (c != std::string::npos) m = m.substr(c + 2);
  }
  return m;
}

// "line L, column C" for a parse error at a byte offset (nlohmann counts bytes read, 1-based).
std::string where_in(std::string_view text, size_t byte) {
  return line_col(text, byte == 0 ? 0 : byte - 1);
}

JsonRows parse_array(std::string_view text, const std::string& origin) {
  ojson arr;
  try {
    arr = ojson::parse(text);
  } catch (const ojson::parse_error& e) {
    fail(origin, ": invalid JSON at ", where_in(text, e.byte), ": ", detail(e),
         " (hint: a .json dataset is one array of objects; skip_bad_lines only works for JSON Lines)");
  } catch (const ojson::out_of_range& e) {  // a number beyond double, "1e400": no position given
    fail(origin, ": invalid JSON: ", detail(e));
  }
  if (!arr.is_array()) fail(origin, ": expected a JSON array of objects, got ", type_name(arr));
  JsonRows out;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string where = cat(origin, " row ", i + 1);
    if (!arr[i].is_object()) fail(where, ": expected a JSON object, got ", type_name(arr[i]));
    out.rows.push_back({std::move(arr[i]), where});
  }
  return out;
}

JsonRows parse_lines(std::string_view text, const std::string& origin, bool skip_bad_lines) {
  JsonRows out;
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view s = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (s.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::string where = cat(origin, ":", line);
    std::string problem;
    ojson v;
    try {
      v = ojson::parse(s);
      if (!v.is_object()) problem = cat("expected a JSON object, got ", type_name(v));
    } catch (const ojson::parse_error& e) {
      problem = cat("invalid JSON at column ", e.byte, ": ", detail(e));
    } catch (const ojson::out_of_range& e) {  // a number beyond double, "1e400"
      problem = cat("invalid JSON: ", detail(e));
    }
    if (problem.empty()) {
      out.rows.push_back({std::move(v), where});
    } else if (skip_bad_lines) {
      ++out.skipped;
      log_warn(where, ": skipped: ", problem);
    } else {
      fail(where, ": ", problem,
           " (hint: JSON Lines needs one complete object per line; set skip_bad_lines to skip such lines)");
    }
  }
  return out;
}

}  // namespace

JsonRows parse_json_rows(std::string_view text, const std::string& origin, bool skip_bad_lines) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  if (text[first] == '[') return parse_array(text, origin);
  return parse_lines(text, origin, skip_bad_lines);
}

JsonRows read_json_rows(const std::filesystem::path& path, bool skip_bad_lines) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail("dataset file not found: ", path.string(), " (hint: give a .json or .jsonl file)");
  std::string text = normalise_text(read_file(path), path.string());
  return parse_json_rows(text, path.string(), skip_bad_lines);
}

}  // namespace tpro
