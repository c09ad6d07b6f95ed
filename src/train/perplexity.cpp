// Sliding-window perplexity and the evaluations CSV; see perplexity.h.
#include "train/perplexity.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>

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

constexpr const char* kHeader = "model,lora,dataset,perplexity,stride,max_length,tokens,date,comment";
constexpr const char* kColumns[] = {"model", "lora", "dataset", "perplexity", "stride", "max_length", "tokens",
                                    "date", "comment"};
constexpr size_t kNumColumns = 9;
constexpr uintmax_t kMaxCsvBytes = uintmax_t(64) << 20;

// One writer at a time in this process: a job's append and a comment's rewrite each read the
// whole file and replace it, so two at once would lose one's change.
std::mutex& csv_mutex() {
  static std::mutex m;
  return m;
}

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

// A record with where it lies in the text (its line ending included) and its record number
// (1 = the header; blank records are skipped but counted).
struct CsvRecord {
  std::vector<std::string> fields;
  size_t begin = 0, end = 0;
  int64_t line = 0;
};

std::vector<CsvRecord> csv_records(const std::string& text) {
  std::vector<CsvRecord> out;
  size_t pos = 0;
  for (int64_t line = 1; pos < text.size(); ++line) {
    CsvRecord r;
    r.begin = pos;
    r.fields = csv_record(text, pos);
    r.end = pos;
    r.line = line;
    if (line > 1 && r.fields.size() == 1 && r.fields[0].empty()) continue;
    out.push_back(std::move(r));
  }
  return out;
}

// Where each of the nine columns is: by name when the header names them all (other columns
// are kept as they are), else in the order of kHeader (a file without our header).
struct Columns {
  size_t at[kNumColumns];
  size_t width = kNumColumns;
  std::string header = kHeader;
};

Columns columns_of(const std::vector<std::string>& header) {
  Columns c;
  for (size_t i = 0; i < kNumColumns; ++i) c.at[i] = i;
  Columns named;
  named.width = header.size();
  std::string joined;
  for (const auto& h : header) joined += (joined.empty() ? "" : ",") + h;
  named.header = joined;
  for (size_t i = 0; i < kNumColumns; ++i) {
    const auto it = std::find(header.begin(), header.end(), kColumns[i]);
    if (it == header.end()) return c;
    named.at[i] = size_t(it - header.begin());
  }
  return named;
}

std::string read_csv_text(const fs::path& csv) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(csv, ec);
  if (!ec && size > kMaxCsvBytes)
    fail(csv.string(), ": ", size, " bytes, more than the ", kMaxCsvBytes >> 20,
         " MiB an evaluations file may have (hint: move old rows to another file)");
  return read_file(csv);
}

EvaluationRow row_of(const fs::path& csv, const CsvRecord& rec, const Columns& c) {
  const auto& f = rec.fields;
  if (f.size() != c.width) fail(csv.string(), ":", rec.line, ": expected ", c.width, " fields (", c.header, "), got ", f.size());
  auto col = [&](size_t i) -> const std::string& { return f[c.at[i]]; };
  EvaluationRow r;
  r.model = col(0);
  r.lora = col(1);
  r.dataset = col(2);
  // The whole field must be the number ("12.5x" is not 12.5).
  auto whole = [&](const std::string& s, auto parse) {
    size_t used = 0;
    try {
      auto v = parse(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    fail(csv.string(), ":", rec.line, ": perplexity, stride, max_length and tokens must be numbers, got '", s, "'");
  };
  r.perplexity = whole(col(3), [](const std::string& s, size_t* n) { return std::stod(s, n); });
  r.stride = whole(col(4), [](const std::string& s, size_t* n) { return std::stoll(s, n); });
  r.max_length = whole(col(5), [](const std::string& s, size_t* n) { return std::stoll(s, n); });
  r.tokens = whole(col(6), [](const std::string& s, size_t* n) { return std::stoll(s, n); });
  r.date = col(7);
  r.comment = col(8);
  return r;
}

std::string csv_line(const std::vector<std::string>& fields, const char* ending) {
  std::string s;
  for (size_t i = 0; i < fields.size(); ++i) s += (i ? "," : "") + csv_field(fields[i]);
  return s + ending;
}

}  // namespace

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

void append_evaluation_csv(const fs::path& csv, const EvaluationRow& r) {
  std::lock_guard<std::mutex> lock(csv_mutex());
  std::string text = fs::exists(csv) ? read_csv_text(csv) : std::string(kHeader) + "\n";
  if (!text.empty() && text.back() != '\n') text += '\n';
  size_t pos = 0;
  const Columns c = columns_of(csv_record(text, pos));
  char ppl[64];
  std::snprintf(ppl, sizeof ppl, "%.6f", r.perplexity);
  const std::string values[kNumColumns] = {r.model, r.lora, r.dataset, ppl, std::to_string(r.stride),
                                           std::to_string(r.max_length), std::to_string(r.tokens), r.date, r.comment};
  std::vector<std::string> fields(c.width);  // a column of someone else's stays empty
  for (size_t i = 0; i < kNumColumns; ++i) fields[c.at[i]] = values[i];
  text += csv_line(fields, "\n");
  if (!csv.parent_path().empty()) fs::create_directories(csv.parent_path());
  write_file_atomic(csv, text);
}

std::vector<EvaluationRow> read_evaluation_csv(const fs::path& csv) {
  std::vector<EvaluationRow> rows;
  if (!fs::exists(csv)) return rows;
  const std::vector<CsvRecord> recs = csv_records(read_csv_text(csv));
  if (recs.empty()) return rows;
  const Columns c = columns_of(recs[0].fields);
  for (size_t i = 1; i < recs.size(); ++i) rows.push_back(row_of(csv, recs[i], c));
  return rows;
}

void set_evaluation_comment(const fs::path& csv, size_t index, const EvaluationRow& expect,
                            const std::string& comment) {
  std::lock_guard<std::mutex> lock(csv_mutex());
  const std::string text = read_csv_text(csv);
  const std::vector<CsvRecord> recs = csv_records(text);
  const size_t rows = recs.empty() ? 0 : recs.size() - 1;
  if (index >= rows) fail(csv.string(), ": there is no row ", index, " (the file has ", rows, " rows)");
  const Columns c = columns_of(recs[0].fields);
  const CsvRecord& rec = recs[index + 1];
  const EvaluationRow now = row_of(csv, rec, c);
  if (now.model != expect.model || now.lora != expect.lora || now.dataset != expect.dataset || now.date != expect.date)
    fail(csv.string(), ":", rec.line, ": row ", index, " is the evaluation of '", now.model, "' + '", now.lora,
         "' on '", now.dataset, "' at ", now.date, ", not of '", expect.model, "' + '", expect.lora, "' on '",
         expect.dataset, "' at ", expect.date, " (hint: the file changed; reload the results)");
  std::vector<std::string> fields = rec.fields;
  fields[c.at[8]] = comment;
  const bool crlf = rec.end >= 2 && text[rec.end - 1] == '\n' && text[rec.end - 2] == '\r';
  write_file_atomic(csv, text.substr(0, rec.begin) + csv_line(fields, crlf ? "\r\n" : "\n") + text.substr(rec.end));
}

}  // namespace tpro
