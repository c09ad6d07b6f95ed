// Sliding-window perplexity and the evaluations CSV; see perplexity.h.
#include "train/perplexity.h"

#include <optional>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "model/step.h"

namespace tpro {

double PerplexityResult::perplexity() const { return std::exp(mean_nll()); }

PerplexityResult evaluate_perplexity(const Backend& be, const Model& m, const LoraWeights* lora, const std::vector<int32_t>& tokens,
                                     int64_t stride, int64_t max_length,
                                     const std::function<void(int64_t, int64_t)>& progress) {
  if (stride <= 0 || max_length <= 1) fail("perplexity needs stride > 0 and max_length > 1 (got ", stride, ", ", max_length, ")");
  if (stride > max_length) fail("perplexity stride ", stride, " is larger than max_length ", max_length, " (tokens would be skipped)");
  const int64_t n = int64_t(tokens.size());
  if (n < 2) fail("perplexity needs at least 2 tokens of text, got ", n);
  for (int32_t t : tokens)
    if (t < 0 || t >= m.cfg.vocab_size) fail("token id ", t, " is outside the model's vocabulary of ", m.cfg.vocab_size);
  const int64_t T = std::min(max_length, n);
  const int64_t total = (std::max<int64_t>(n - T, 0) + stride - 1) / stride + 1;
  Activations a;
  make_activations(a, be, m.cfg, lora, 1, T);
  std::optional<LoraState> state;  // the adapter on the device
  if (lora) state.emplace(be, *lora);
  std::vector<uint8_t> mask;
  PerplexityResult r;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + max_length, n), len = end - begin;
    const int64_t trg = end - prev_end;  // tokens not scored by an earlier window
    mask.assign(size_t(len), 0);
    for (int64_t t = std::max<int64_t>(len - trg, 1); t < len; ++t) mask[size_t(t)] = 1;
    reshape_activations(a, m.cfg, lora, 1, len);
    const BatchView in{1, len, tokens.data() + begin, nullptr, nullptr, mask.data()};
    StepOptions opt;
    opt.train = false;
    StepResult s = forward(m, state ? &*state : nullptr, a, in, opt);
    r.nll_sum += s.nll_sum;
    r.n_scored += s.n_trained;
    ++r.n_windows;
    if (progress) progress(r.n_windows, total);
    prev_end = end;
    if (end == n) break;
  }
  return r;
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// Splits one CSV record starting at pos (quoted fields may span lines); advances pos.
std::vector<std::string> csv_record(const std::string& text, size_t& pos) {
  std::vector<std::string> f(1);
  bool quoted = false;
  while (pos < text.size()) {
    char c = text[pos++];
    if (quoted) {
      if (c == '"' && pos < text.size() && text[pos] == '"') f.back() += '"', ++pos;
      else if (c == '"') quoted = false;
      else f.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      f.emplace_back();
    } else if (c == '\n') {
      break;
    } else if (c != '\r') {
      f.back() += c;
    }
  }
  return f;
}
const char* kHeader = "model,lora,dataset,perplexity,stride,max_length,tokens,date,comment";
}  // namespace

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

void append_evaluation_csv(const fs::path& csv, const EvaluationRow& r) {
  std::string text = fs::exists(csv) ? read_file(csv) : std::string(kHeader) + "\n";
  if (!text.empty() && text.back() != '\n') text += '\n';
  char ppl[64];
  std::snprintf(ppl, sizeof ppl, "%.6f", r.perplexity);
  text += csv_field(r.model) + "," + csv_field(r.lora) + "," + csv_field(r.dataset) + "," + ppl + "," +
          std::to_string(r.stride) + "," + std::to_string(r.max_length) + "," + std::to_string(r.tokens) + "," +
          csv_field(r.date) + "," + csv_field(r.comment) + "\n";
  if (!csv.parent_path().empty()) fs::create_directories(csv.parent_path());
  write_file_atomic(csv, text);
}

std::vector<EvaluationRow> read_evaluation_csv(const fs::path& csv) {
  std::vector<EvaluationRow> rows;
  if (!fs::exists(csv)) return rows;
  const std::string text = read_file(csv);
  size_t pos = 0;
  auto header = csv_record(text, pos);
  int64_t line = 1;
  while (pos < text.size()) {
    ++line;
    auto f = csv_record(text, pos);
    if (f.size() == 1 && f[0].empty()) continue;
    if (f.size() != 9) fail(csv.string(), ":", line, ": expected 9 fields (", kHeader, "), got ", f.size());
    EvaluationRow r;
    r.model = f[0];
    r.lora = f[1];
    r.dataset = f[2];
    // The whole field must be the number ("12.5x" is not 12.5).
    auto whole = [&](const std::string& s, auto parse) {
      size_t used = 0;
      try {
        auto v = parse(s, &used);
        if (used == s.size()) return v;
      } catch (const std::exception&) {
      }
      fail(csv.string(), ":", line, ": perplexity, stride, max_length and tokens must be numbers, got '", s, "'");
    };
    r.perplexity = whole(f[3], [](const std::string& s, size_t* n) { return std::stod(s, n); });
    r.stride = whole(f[4], [](const std::string& s, size_t* n) { return std::stoll(s, n); });
    r.max_length = whole(f[5], [](const std::string& s, size_t* n) { return std::stoll(s, n); });
    r.tokens = whole(f[6], [](const std::string& s, size_t* n) { return std::stoll(s, n); });
    r.date = f[7];
    r.comment = f[8];
    rows.push_back(r);
  }
  return rows;
}

}  // namespace tpro
