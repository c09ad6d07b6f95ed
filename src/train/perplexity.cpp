// Sliding-window perplexity and evaluations.csv; see perplexity.h.
#include "train/perplexity.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/file.h"
#include "model/step.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

namespace {

struct Window {
  int64_t begin, end, first_scored;  // global token indices; scored = [first_scored, end)
};

// The recipe's windows: start every `stride` tokens, stop at the one that reaches the end.
std::vector<Window> plan_windows(int64_t n, int64_t stride, int64_t max_length) {
  std::vector<Window> w;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + max_length, n);
    w.push_back({begin, end, prev_end});
    prev_end = end;
    if (end == n) break;
  }
  return w;
}

}  // namespace

PerplexityResult evaluate_perplexity(const Model& model, const LoraWeights* lora, std::span<const int32_t> ids,
                                     const PerplexityOptions& opt, const PerplexityProgress& progress) {
  const int64_t n = int64_t(ids.size());
  const int64_t L = opt.max_length > 0 ? opt.max_length : model.cfg.max_position;
  if (opt.max_length < 0) fail("perplexity: max_length must be >= 0 (0 = the model's context), got ", opt.max_length);
  if (L < 2 || L > model.cfg.max_position)
    fail("perplexity: max_length must be in [2, ", model.cfg.max_position, "] (the model's max_position_embeddings), got ",
         L);
  if (opt.stride < 1 || opt.stride > L)
    fail("perplexity: stride must be in [1, max_length = ", L, "], got ", opt.stride,
         " (hint: a stride above max_length would skip tokens)");
  if (n < 2) fail("perplexity: the text has ", n, " token(s); at least 2 are needed to predict anything");
  for (int64_t i = 0; i < n; ++i)
    if (ids[size_t(i)] < 0 || ids[size_t(i)] >= model.cfg.vocab_size)
      fail("perplexity: token ", i, " has id ", ids[size_t(i)], ", outside the model's vocabulary of ",
           model.cfg.vocab_size);

  const std::vector<Window> windows = plan_windows(n, opt.stride, L);
  Activations a;
  make_activations(a, model.cfg, lora, 1, std::min(L, n));
  std::vector<uint8_t> mask(static_cast<size_t>(L), 0);
  PerplexityResult r;
  r.n_tokens = n;
  r.max_length = L;
  double nll_sum = 0.0;
  for (const Window& w : windows) {
    const int64_t T = w.end - w.begin;
    reshape_activations(a, model.cfg, lora, 1, T);
    for (int64_t t = 0; t < T; ++t) mask[size_t(t)] = w.begin + t >= w.first_scored ? 1 : 0;
    StepInputs in{1, T, ids.data() + w.begin, nullptr, nullptr, mask.data(), 1.0};
    StepOptions so;
    so.train = false;
    const StepResult s = forward(model, lora, a, in, so);
    nll_sum += s.nll_sum;
    r.n_scored += s.n_trained;
    ++r.windows;
    if (progress && !progress(r.windows, int64_t(windows.size()))) fail("perplexity evaluation cancelled");
  }
  r.nll = nll_sum / double(r.n_scored);
  r.perplexity = std::exp(r.nll);
  return r;
}

PerplexityResult evaluate_perplexity(const Model& model, const LoraWeights* lora, const Tokenizer& tok,
                                     const std::string& text, const PerplexityOptions& opt,
                                     const PerplexityProgress& progress) {
  const std::vector<int32_t> ids = tok.encode(text, opt.add_bos);
  return evaluate_perplexity(model, lora, ids, opt, progress);
}

// ---- evaluations.csv ----

namespace {

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> c = {"Model", "LoRAs", "Dataset", "Perplexity",
                                             "stride", "max_length", "Date", "Comment"};
  return c;
}

std::string number_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string s;
  for (size_t i = 0; i < fields.size(); ++i) s += (i ? "," : "") + csv_quote(fields[i]);
  return s + "\n";
}

template <typename T>
T parse_cell(const std::string& cell, const std::string& where, const char* column) {
  T v{};
  auto r = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  if (r.ec != std::errc() || r.ptr != cell.data() + cell.size())
    fail(where, ": column ", column, " expects a number, got '", cell, "'");
  return v;
}

}  // namespace

std::string csv_quote(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string q = "\"";
  for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  int64_t line = 1, quote_line = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
      else if (c == '"') quoted = false;
      else cell += c, line += c == '\n';
      continue;
    }
    if (c == '"' && cell.empty()) quoted = true, quote_line = line, any = true;
    else if (c == ',') row.push_back(std::move(cell)), cell.clear(), any = true;
    else if (c == '\r') continue;
    else if (c == '\n') {
      if (any || !cell.empty()) row.push_back(std::move(cell)), rows.push_back(std::move(row));
      row.clear(), cell.clear(), any = false, ++line;
    } else cell += c, any = true;
  }
  if (quoted) fail(origin, ":", quote_line, ": unterminated quoted field");
  if (any || !cell.empty()) row.push_back(std::move(cell)), rows.push_back(std::move(row));
  return rows;
}

void append_evaluation_csv(const fs::path& file, const EvaluationRow& row) {
  std::string text = fs::exists(file) ? read_file(file) : std::string();
  if (text.empty()) text = csv_line(csv_columns());
  else if (text.back() != '\n') text += '\n';
  text += csv_line({row.model, row.loras, row.dataset, number_text(row.perplexity), std::to_string(row.stride),
                    std::to_string(row.max_length), row.date, row.comment});
  write_file_atomic(file, text);
}

std::vector<EvaluationRow> read_evaluation_csv(const fs::path& file) {
  if (!fs::exists(file)) return {};
  const auto rows = parse_csv(read_file(file), file.string());
  if (rows.empty()) return {};
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < rows[0].size(); ++i) col[rows[0][i]] = i;
  for (const auto& name : csv_columns())
    if (!col.count(name)) fail(file.string(), ":1: missing column '", name, "' (expected ", csv_line(csv_columns()), ")");
  std::vector<EvaluationRow> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& f = rows[r];
    const std::string where = file.string() + ": record " + std::to_string(r + 1);
    if (f.size() != rows[0].size())
      fail(where, ": ", f.size(), " fields, the header has ", rows[0].size());
    EvaluationRow e;
    e.model = f[col["Model"]];
    e.loras = f[col["LoRAs"]];
    e.dataset = f[col["Dataset"]];
    e.perplexity = parse_cell<double>(f[col["Perplexity"]], where, "Perplexity");
    e.stride = parse_cell<int64_t>(f[col["stride"]], where, "stride");
    e.max_length = parse_cell<int64_t>(f[col["max_length"]], where, "max_length");
    e.date = f[col["Date"]];
    e.comment = f[col["Comment"]];
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace tpro
