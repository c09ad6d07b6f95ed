// ApiError's JSON body and the field-from-message lookup; see api_error.h.
#include "server/api_error.h"

#include <cctype>

#include "train/params.h"

namespace tpro {

nlohmann::json ApiError::body() const {
  nlohmann::json e = {{"message", what()}, {"type", type_}};
  if (!field_.empty()) e["field"] = field_;
  return {{"error", e}};
}

void bad_request(const std::string& field, const std::string& message) {
  throw ApiError(400, "invalid_request_error", message, field);
}

void conflict(const std::string& message) { throw ApiError(409, "conflict", message); }

void not_found(const std::string& message) { throw ApiError(404, "not_found", message); }

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// First whole-word position of name in s, or npos.
size_t find_word(const std::string& s, const std::string& name) {
  for (size_t at = s.find(name); at != std::string::npos; at = s.find(name, at + 1)) {
    const bool left = at == 0 || !is_word_char(s[at - 1]);
    const size_t end = at + name.size();
    const bool right = end == s.size() || !is_word_char(s[end]);
    if (left && right) return at;
  }
  return std::string::npos;
}

// message with each "(hint: ...)" blanked out, up to its matching parenthesis.
std::string without_hints(std::string s) {
  for (size_t at = s.find("(hint:"); at != std::string::npos; at = s.find("(hint:", at)) {
    int depth = 0;
    size_t i = at;
    for (; i < s.size(); ++i) {
      depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
      s[i] = ' ';
      if (depth == 0) break;
    }
    at = i;
  }
  return s;
}

}  // namespace

std::string field_in_message(const std::string& message) {
  const std::string text = without_hints(message);
  std::string best;
  size_t best_at = std::string::npos;
  for (const auto& f : param_fields()) {
    const size_t at = find_word(text, f.name);
    // On a tie ("dataset" inside "jsonl_dataset" cannot tie: whole words) the longer name wins.
    if (at < best_at || (at == best_at && at != std::string::npos && f.name.size() > best.size())) {
      best_at = at;
      best = f.name;
    }
  }
  return best;
}

}  // namespace tpro
