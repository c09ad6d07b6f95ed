// Edit distance and "did you mean" hints; see suggest.h.
#include "train/suggest.h"

#include <algorithm>
#include <cctype>

namespace tpro {

size_t edit_distance(std::string_view a, std::string_view b) {
  auto low = [](char c) { return char(std::tolower(static_cast<unsigned char>(c))); };
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (low(a[i - 1]) == low(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view key, const std::vector<std::string>& candidates) {
  size_t limit = std::max<size_t>(2, key.size() / 3);
  size_t best = limit + 1;
  std::string out;
  for (const auto& c : candidates) {
    size_t d = edit_distance(key, c);
    if (d < best) {
      best = d;
      out = c;
    }
  }
  return out;
}

std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates) {
  std::string m = closest_match(key, candidates);
  return m.empty() ? std::string() : " (did you mean '" + m + "'?)";
}

std::string join_names(const std::vector<std::string>& names, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += sep;
    out += names[i];
  }
  return out;
}

}  // namespace tpro
