// Format file loading and row rendering; see format_file.h.
#include "data/format_file.h"

#include <algorithm>

#include "core/error.h"
#include "core/file.h"
#include "data/text_files.h"

namespace tpro {

namespace {

using ojson = nlohmann::ordered_json;

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

std::string join(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "}";
}

bool non_blank_string(const ojson& v) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  return std::any_of(s.begin(), s.end(), [](char c) { return !is_space(c); });
}

}  // namespace

FormatFile FormatFile::load(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail("format file not found: ", path.string(), " (hint: see the formats/ folder for examples)");
  return parse(normalise_text(read_file(path), path.string()), path.string());
}

FormatFile FormatFile::parse(std::string_view json, const std::string& origin) {
  ojson j;
  try {
    j = ojson::parse(json);
  } catch (const ojson::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    fail(origin, ": invalid JSON: ", e.what());
  }
  if (!j.is_object() || j.empty())
    fail(origin, ": a format file is a JSON object like {\"instruction,output\": \"...%instruction%...\"}");
  FormatFile f;
  f.origin_ = origin;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) fail(origin, ": entry \"", key, "\" must be a string template, got ", value.type_name());
    FormatEntry e;
    size_t start = 0;
    for (;;) {
      size_t comma = key.find(',', start);
      std::string name = trim(std::string_view(key).substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (!name.empty()) e.keys.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (e.keys.empty()) fail(origin, ": entry \"", key, "\" names no keys");
    std::sort(e.keys.begin(), e.keys.end());
    e.tmpl = value.get<std::string>();
    f.entries_.push_back(std::move(e));
  }
  return f;
}

std::string FormatFile::render(const ojson& row, const std::string& where) const {
  std::vector<std::string> keys;
  for (const auto& [k, v] : row.items())
    if (non_blank_string(v)) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  const FormatEntry* match = nullptr;
  for (const FormatEntry& e : entries_) {
    if (e.keys == keys) {
      match = &e;
      break;
    }
  }
  if (!match) {
    std::string known;
    for (const FormatEntry& e : entries_) known += (known.empty() ? "" : ", ") + join(e.keys);
    fail(where, ": keys ", join(keys), " match no entry of format ", origin_, " (entries: ", known,
         ") (hint: add an entry for this key set to the format file)");
  }
  // One left-to-right pass: %name% with a string value in the row is replaced; anything else
  // (unknown names, lone %) is kept as written.
  const std::string& t = match->tmpl;
  std::string out;
  size_t i = 0;
  while (i < t.size()) {
    size_t close = t[i] == '%' ? t.find('%', i + 1) : std::string::npos;
    if (close != std::string::npos) {
      std::string name = t.substr(i + 1, close - i - 1);
      auto it = row.find(name);
      if (!name.empty() && it != row.end() && it->is_string()) {
        out += it->get_ref<const std::string&>();
        i = close + 1;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return out;
}

}  // namespace tpro
