// JSON helpers with file/path/expected-vs-got errors; see json_read.h.
#include "tokenizer/json_read.h"

#include "core/error.h"

namespace tpro::tok {

JsonAt JsonAt::at(std::string_view key) const {
  return {origin, path.empty() ? std::string(key) : path + "." + std::string(key)};
}

JsonAt JsonAt::at(size_t index) const { return {origin, path + "[" + std::to_string(index) + "]"}; }

void JsonAt::fail(const std::string& msg) const {
  if (path.empty()) tpro::fail(origin, ": ", msg);
  tpro::fail(origin, ": ", path, ": ", msg);
}

Json parse_json(std::string_view text, const std::string& origin) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    size_t byte = e.byte > 0 ? e.byte - 1 : 0;  // nlohmann counts from 1
    size_t line = 1, col = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    size_t colon = what.find(": ", what.find("column"));
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    tpro::fail(origin, ": invalid JSON at line ", line, ", column ", col, " (byte ", byte, "): ", reason);
  }
}

const Json& require(const Json& obj, const char* key, const JsonAt& at) {
  require_object(obj, at);
  auto it = obj.find(key);
  if (it == obj.end()) at.at(key).fail("is missing");
  return *it;
}

const Json* optional(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

void require_object(const Json& j, const JsonAt& at) {
  if (!j.is_object()) at.fail(std::string("expected an object, got ") + j.type_name());
}

void require_array(const Json& j, const JsonAt& at) {
  if (!j.is_array()) at.fail(std::string("expected an array, got ") + j.type_name());
}

std::string get_string(const Json& j, const JsonAt& at) {
  if (!j.is_string()) at.fail(std::string("expected a string, got ") + j.type_name());
  return j.get<std::string>();
}

int64_t get_int(const Json& j, const JsonAt& at) {
  if (!j.is_number_integer()) at.fail(std::string("expected an integer, got ") + j.type_name());
  return j.get<int64_t>();
}

bool get_bool(const Json& obj, const char* key, bool fallback, const JsonAt& at) {
  const Json* v = optional(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean()) at.at(key).fail(std::string("expected true or false, got ") + v->type_name());
  return v->get<bool>();
}

std::string get_token_content(const Json& j, const JsonAt& at) {
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) return get_string(require(j, "content", at), at.at("content"));
  at.fail(std::string("expected a token string or {\"content\": ...}, got ") + j.type_name());
}

}  // namespace tpro::tok
