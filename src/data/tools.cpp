// Dataset tools; see tools.h. Conversions follow Training PRO's script.py (convert_json_to_jsonl,
// convert_text_to_jsonl, split_dataset, dump_train_dataset, train_template).
#include "data/tools.h"

#include <algorithm>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "data/check.h"
#include "data/format_file.h"

namespace tpro {

using ojson = nlohmann::ordered_json;

namespace {

ojson message(const char* role, const std::string& content) { return ojson{{"role", role}, {"content", content}}; }

std::string trimmed(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\n\r\f\v");
  return std::string(s.substr(b, e - b + 1));
}

const std::string& string_key(const JsonRow& r, const char* key) {
  const auto it = r.value.find(key);
  if (it == r.value.end() || !it->is_string())
    fail(r.where, ": no \"", key, "\" string (hint: json-to-jsonl converts Training PRO's instruction files, rows of ",
         "{\"instruction\", \"output\"} with an optional \"input\")");
  return it->get_ref<const std::string&>();
}

std::vector<ojson> shuffled(const JsonRows& rows, bool shuffle, uint64_t seed) {
  std::vector<ojson> v;
  v.reserve(rows.rows.size());
  for (const auto& r : rows.rows) v.push_back(r.value);
  if (shuffle) {
    Rng rng(seed);
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(rng.below(i))]);  // Fisher-Yates
  }
  return v;
}

}  // namespace

std::vector<ojson> instructions_to_chat(const JsonRows& rows, const std::string& system) {
  std::vector<ojson> out;
  for (const auto& r : rows.rows) {
    std::string user = string_key(r, "instruction");
    const std::string& output = string_key(r, "output");
    if (const auto in = r.value.find("input"); in != r.value.end() && in->is_string() && !trimmed(in->get<std::string>()).empty())
      user += "\n\n" + in->get<std::string>();
    ojson msgs = ojson::array();
    if (!system.empty()) msgs.push_back(message("system", system));
    msgs.push_back(message("user", user));
    msgs.push_back(message("assistant", output));
    out.push_back(ojson{{"messages", std::move(msgs)}});
  }
  return out;
}

std::vector<ojson> text_to_chat(std::string_view text, const std::string& system, const std::string& prompt) {
  std::string t;
  t.reserve(text.size());
  for (char c : text)
    if (c != '\r') t += c;
  std::vector<ojson> out;
  size_t start = 0;
  while (start <= t.size()) {
    size_t cut = t.find("\n\n\n", start);
    if (cut == std::string::npos) cut = t.size();
    const std::string block = trimmed(std::string_view(t).substr(start, cut - start));
    if (!block.empty())
      out.push_back(ojson{{"messages", ojson::array({message("system", system), message("user", prompt),
                                                      message("assistant", block)})}});
    start = cut + 3;
  }
  return out;
}

std::string rows_text(const std::vector<ojson>& rows, bool json_array) {
  if (json_array) return ojson(rows).dump(2) + "\n";
  std::string out;
  for (const auto& r : rows) out += r.dump() + "\n";
  return out;
}

std::vector<std::vector<ojson>> split_by_percent(const JsonRows& rows, double eval_percent, bool shuffle,
                                                 uint64_t seed) {
  if (!(eval_percent > 0 && eval_percent < 100))
    fail("eval percent must be between 0 and 100 (exclusive), got ", eval_percent);
  std::vector<ojson> v = shuffled(rows, shuffle, seed);
  const size_t train = size_t(double(v.size()) * (1.0 - eval_percent / 100.0));
  if (train == 0 || train == v.size())
    fail("splitting ", v.size(), " rows at ", eval_percent, "% leaves ", train == 0 ? "no training" : "no eval",
         " rows (hint: more rows or another --eval-percent)");
  return {std::vector<ojson>(v.begin(), v.begin() + std::ptrdiff_t(train)),
          std::vector<ojson>(v.begin() + std::ptrdiff_t(train), v.end())};
}

std::vector<std::vector<ojson>> split_into_parts(const JsonRows& rows, int64_t parts, bool shuffle, uint64_t seed) {
  const int64_t n = int64_t(rows.rows.size());
  if (parts < 2 || parts > n) fail("cannot split ", n, " rows into ", parts, " parts (expected 2 to ", n, ")");
  std::vector<ojson> v = shuffled(rows, shuffle, seed);
  std::vector<std::vector<ojson>> out(static_cast<size_t>(parts));
  for (int64_t k = 0; k < parts; ++k)  // part k gets rows [k n / parts, (k+1) n / parts)
    for (int64_t i = k * n / parts; i < (k + 1) * n / parts; ++i) out[size_t(k)].push_back(std::move(v[size_t(i)]));
  return out;
}

std::string dump_blocks_jsonl(const std::vector<Block>& train, const std::vector<Block>& eval, const TokenCodec& codec,
                              bool mark_untrained) {
  std::string out;
  for (const auto* set : {&train, &eval})
    for (size_t i = 0; i < set->size(); ++i) {
      const Block& b = (*set)[i];
      out += ojson{{"split", set == &train ? "train" : "eval"},
                   {"index", i},
                   {"kind", block_kind_name(b.kind)},
                   {"source", b.source == BlockSource::kRawText ? "raw_text" : "dataset"},
                   {"doc", b.doc},
                   {"tokens", b.size()},
                   {"trained", b.n_trained()},
                   {"text", decode_block(b, codec, mark_untrained)}}
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n";
    }
  return out;
}

ojson training_prompt_json(const DataOptions& opt) {
  ojson j;
  const bool rows = !opt.rows_path().empty();
  j["template_type"] = rows ? "dataset" : "raw_text";
  if (rows && !opt.rows_format().empty()) {
    const FormatFile f = FormatFile::load(opt.rows_format());
    for (const auto& e : f.entries()) j["template_" + std::to_string(j.size())] = e.tmpl;
  }
  return j;
}

void write_new_file(const fs::path& path, std::string_view bytes, bool force) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(path.string(), " is a folder (hint: name the output file)");
  if (fs::exists(path, ec) && !force) fail(path.string(), " exists (hint: --force to overwrite it)");
  write_file_atomic(path, bytes);
}

}  // namespace tpro
