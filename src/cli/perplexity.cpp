// `tpro perplexity`: sliding-window perplexity of a model (with an optional adapter) on a text
// file, printed and appended to an evaluations CSV.
#include <cstdio>

#include "cli/command.h"
#include "core/log.h"
#include "formats/load.h"
#include "kernels/backend.h"
#include "tokenizer/tokenizer.h"
#include "train/perplexity.h"

namespace tpro::cli {
namespace {

struct PplArgs {
  std::string model, lora, file, csv = "evaluations.csv", comment, device = "cpu";
  int64_t stride = 512, max_length = 0;
  bool add_bos = true;
};

int run(const PplArgs& a) {
  const std::unique_ptr<Backend> be = make_backend(a.device);
  Model m = load_model(a.model);
  Tokenizer tok = Tokenizer::load(a.model);
  LoraWeights lw;
  const LoraWeights* lp = nullptr;
  if (!a.lora.empty()) {
    lw = load_lora(a.lora, m.cfg);
    lp = &lw;
  }
  std::vector<int32_t> ids = tok.encode(read_file(a.file), a.add_bos);
  const int64_t max_len = a.max_length > 0 ? a.max_length : std::min<int64_t>(m.cfg.max_position, 2048);
  log_info(a.file, ": ", ids.size(), " tokens, stride ", a.stride, ", max length ", max_len);
  PerplexityResult r = evaluate_perplexity(*be, m, lp, ids, std::min(a.stride, max_len), max_len, [](int64_t d, int64_t t) {
    std::fprintf(stderr, "\rwindow %lld/%lld", static_cast<long long>(d), static_cast<long long>(t));
  });
  std::fprintf(stderr, "\n");
  std::printf("perplexity %.4f (mean nll %.5f over %lld tokens, %lld windows)\n", r.perplexity(), r.mean_nll(),
              static_cast<long long>(r.n_scored), static_cast<long long>(r.n_windows));
  if (!a.csv.empty()) {
    append_evaluation_csv(a.csv, {a.model, a.lora, a.file, a.comment, now_iso8601(), r.perplexity(), a.stride, max_len,
                                  int64_t(ids.size())});
    log_info("appended to ", a.csv);
  }
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<PplArgs>();
  sub->add_option("--model", a->model, "Base model folder")->required();
  sub->add_option("--device", a->device, "Where the model runs (this build: cpu)")->default_val("cpu");
  sub->add_option("--lora", a->lora, "Adapter to apply: PEFT folder or GGUF adapter file");
  sub->add_option("--file", a->file, "Text file to evaluate")->required();
  sub->add_option("--stride", a->stride, "Window advance in tokens")->default_val(512)->check(CLI::PositiveNumber);
  sub->add_option("--max-length", a->max_length, "Window length (default: the model's context, at most 2048)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--csv", a->csv, "Evaluations CSV to append to (empty: don't)")->default_val("evaluations.csv");
  sub->add_option("--comment", a->comment, "Comment stored in the CSV row");
  sub->add_flag("!--no-bos", a->add_bos, "Do not add the BOS token at the start of the text");
  return [a] { return run(*a); };
}

TPRO_COMMAND("perplexity", "Sliding-window perplexity of a model (and adapter) on a text file", setup);

}  // namespace
}  // namespace tpro::cli
