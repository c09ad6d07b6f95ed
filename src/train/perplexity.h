// Perplexity of a model (optionally with a LoRA) on a text, by the Hugging Face sliding-window
// recipe (transformers docs, "Perplexity of fixed-length models"): windows of max_length
// tokens starting every `stride` tokens, each scoring only the tokens the previous window did
// not, token-weighted over the whole text. Plus evaluations.csv, the results table of
// text-generation-webui's Perplexity tab (same columns). Not here: loading files, HTTP.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"

namespace tpro {

class Tokenizer;

struct PerplexityOptions {
  int64_t stride = 512;     // tokens between window starts; 1 <= stride <= max_length
  int64_t max_length = 0;   // window length in tokens; 0 = the model's max_position
  bool add_bos = true;      // encode the text with the tokenizer's special tokens
};

struct PerplexityResult {
  double perplexity = 0;  // exp(nll / n_scored)
  double nll = 0;         // mean −log p over the scored tokens
  int64_t n_tokens = 0;   // tokens in the text
  int64_t n_scored = 0;   // tokens predicted: all but the first when stride < max_length (with
                          // stride == max_length each window's first token has no context)
  int64_t windows = 0;
  int64_t max_length = 0;  // the window length used (max_length 0 resolved)
};

// Called after each window with (windows done, windows in all); return false to cancel,
// which throws Error "perplexity evaluation cancelled".
using PerplexityProgress = std::function<bool(int64_t done, int64_t total)>;

// Throws Error for stride/max_length out of range (naming the value and the limit) and for
// fewer than 2 tokens.
PerplexityResult evaluate_perplexity(const Model& model, const LoraWeights* lora, std::span<const int32_t> ids,
                                     const PerplexityOptions& opt, const PerplexityProgress& progress = {});
PerplexityResult evaluate_perplexity(const Model& model, const LoraWeights* lora, const Tokenizer& tok,
                                     const std::string& text, const PerplexityOptions& opt,
                                     const PerplexityProgress& progress = {});

// One row of evaluations.csv: Model, LoRAs, Dataset, Perplexity, stride, max_length, Date, Comment.
struct EvaluationRow {
  std::string model, loras, dataset;
  double perplexity = 0;
  int64_t stride = 0, max_length = 0;
  std::string date;     // "2024-05-01 12:00:00"
  std::string comment;
};

// Appends a row (writing the header first when the file is new); the file is rewritten
// atomically. Reading throws Error naming the file and line for a malformed row.
void append_evaluation_csv(const std::filesystem::path& file, const EvaluationRow& row);
std::vector<EvaluationRow> read_evaluation_csv(const std::filesystem::path& file);  // [] when absent

// RFC 4180 field quoting and line splitting, exposed for tests.
std::string csv_quote(const std::string& field);
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin);

}  // namespace tpro
