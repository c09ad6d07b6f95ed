// "Did you mean" hints for misspelt keys and choices: the closest candidate by edit distance
// (Levenshtein, case-insensitive), offered only when it is close enough to be a likely typo.
// Used by the parameter schema, scheduler names and the control-file protocol.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tpro {

size_t edit_distance(std::string_view a, std::string_view b);  // case-insensitive

// The closest candidate, or "" when none is within max(2, |key| / 3) edits.
std::string closest_match(std::string_view key, const std::vector<std::string>& candidates);

// " (did you mean 'lora_rank'?)" or "" — ready to append to an error message.
std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates);

// "a, b, c" for error messages listing the accepted values.
std::string join_names(const std::vector<std::string>& names, std::string_view sep = ", ");

}  // namespace tpro
