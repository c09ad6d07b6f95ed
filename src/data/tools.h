// Training PRO's dataset tools (its "Tools" tab and dataset dump) behind `tpro data ...`:
// instruction JSON -> chat JSONL, text blocks -> chat JSONL, splitting a dataset for eval or
// into parts, every decoded block a run trains on, and training_prompt.json. Pure functions
// from inputs to bytes; writing files (never over an existing one unless forced) is
// write_new_file's. No CLI code here.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "data/block.h"
#include "data/codec.h"
#include "data/json_rows.h"
#include "data/options.h"

namespace tpro {

// "Convert JSON to JSONL": each {"instruction", "output"[, "input"]} row becomes {"messages":
// [{system} if non-empty, {user: instruction (+ "\n\n" + input when non-blank)}, {assistant: output}]}.
// (Training PRO drops "input"; here it is kept in the user turn.) A row without string
// instruction/output is an Error naming the row.
std::vector<nlohmann::ordered_json> instructions_to_chat(const JsonRows& rows, const std::string& system);

// "Simple TXT to JSONL": the text (\r removed) split at "\n\n\n", each trimmed non-empty block
// becoming {"messages": [system, user: prompt, assistant: block]}, as Training PRO does.
std::vector<nlohmann::ordered_json> text_to_chat(std::string_view text, const std::string& system,
                                                 const std::string& prompt);

// One compact JSON object per line (JSONL), or an indented JSON array (json_array: what
// Training PRO itself writes and reads, even in .jsonl files).
std::string rows_text(const std::vector<nlohmann::ordered_json>& rows, bool json_array);

// Splits rows, shuffled with `seed` unless !shuffle. By eval percent (Training PRO's split:
// train gets floor(n * (1 - percent/100)) rows, eval the rest) -> {train, eval}; or into
// `parts` near-equal parts in order. Errors for percent outside (0, 100) or parts outside 2..n.
std::vector<std::vector<nlohmann::ordered_json>> split_by_percent(const JsonRows& rows, double eval_percent,
                                                                  bool shuffle, uint64_t seed);
std::vector<std::vector<nlohmann::ordered_json>> split_into_parts(const JsonRows& rows, int64_t parts, bool shuffle,
                                                                  uint64_t seed);

// Every block as one JSONL line: {"split", "index", "kind", "source", "doc", "tokens",
// "trained", "text"}; text decoded with special tokens kept and, when mark_untrained, the
// untrained tokens between "⟦" and "⟧" (as check's sample).
std::string dump_blocks_jsonl(const std::vector<Block>& train, const std::vector<Block>& eval, const TokenCodec& codec,
                              bool mark_untrained);

// training_prompt.json as Training PRO writes it next to the adapter: {"template_type":
// "raw_text"} for a raw-text run, else {"template_type": "dataset"} plus, for a formatted
// dataset, "template_1", "template_2", ... = the format file's templates in file order.
nlohmann::ordered_json training_prompt_json(const DataOptions& opt);

// Writes bytes atomically to path; an existing path is an Error unless force ("<path> exists
// (hint: --force to overwrite it)"), and so is a path that is a folder.
void write_new_file(const std::filesystem::path& path, std::string_view bytes, bool force);

}  // namespace tpro
