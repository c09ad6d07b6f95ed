// Perplexity of a model (optionally with a LoRA adapter) on a token sequence, by the Hugging
// Face sliding-window recipe (docs "Perplexity of fixed-length models"): windows of max_length
// tokens advancing by stride, each scoring only the tokens not scored before, token-weighted
// over the whole text. Also the evaluations CSV that the CLI and web UI append to.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/file.h"
#include "kernels/backend.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

struct PerplexityResult {
  double nll_sum = 0.0;  // Σ −log p over scored tokens
  int64_t n_scored = 0;  // tokens scored (every token but the first)
  int64_t n_windows = 0;
  double mean_nll() const { return n_scored ? nll_sum / double(n_scored) : 0.0; }
  double perplexity() const;
};

// progress (may be null) is called after each window with (windows done, windows total).
PerplexityResult evaluate_perplexity(const Backend& be, const Model& m, const LoraWeights* lora, const std::vector<int32_t>& tokens,
                                     int64_t stride, int64_t max_length,
                                     const std::function<void(int64_t, int64_t)>& progress = nullptr);

struct EvaluationRow {
  std::string model, lora, dataset, comment, date;
  double perplexity = 0.0;
  int64_t stride = 0, max_length = 0, tokens = 0;
};
// Appends a row to a CSV (header written when the file is new). Fields are quoted as RFC 4180.
void append_evaluation_csv(const fs::path& csv, const EvaluationRow& row);
// Columns are found by their header names when the header names all nine (the file may hold
// more; they are kept, and appended rows leave them empty), else taken in the order above.
// Files over 64 MiB are refused. Appends and comment changes in one process are serialised.
std::vector<EvaluationRow> read_evaluation_csv(const fs::path& csv);
// Replaces the comment of data row `index` (0 = the first after the header, blank lines not
// counted, as read_evaluation_csv returns them) when that row is still `expect`'s evaluation
// (same model, lora, dataset and date; Error otherwise). Every other byte of the file stays
// as it was; the file is replaced atomically.
void set_evaluation_comment(const fs::path& csv, size_t index, const EvaluationRow& expect,
                            const std::string& comment);
std::string now_iso8601();

}  // namespace tpro
