// PCRE2 (UTF, Unicode properties, JIT) standing in for the Oniguruma regexes of HF tokenizers:
// compile once, then list all non-overlapping matches the way onig's find_iter does.
// Options mirror Oniguruma's Ruby syntax where patterns can tell: \s \w \p{..} are Unicode,
// and ^/$ are line anchors. Subjects must be valid UTF-8 (the tokenizer sanitizes input).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tpro::tok {

class Regex {
 public:
  // Throws tpro::Error "invalid regex at offset N: <reason>" naming `where`.
  static std::shared_ptr<const Regex> compile(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of all non-overlapping matches, left to right. After
  // an empty match the search resumes one character later.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code*
};

}  // namespace tpro::tok
