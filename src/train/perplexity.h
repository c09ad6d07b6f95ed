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
std::vector<EvaluationRow> read_evaluation_csv(const fs::path& csv);
std::string now_iso8601();

}  // namespace tpro
