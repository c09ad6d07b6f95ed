// `tpro check`: builds the dataset exactly as `tpro train` would (same flags, same YAML) and
// reports blocks, tokens, the suggested cutoff, trims/eliminations, steps per epoch and
// suggested warmup/save frequency, and writes a sample of decoded blocks with masks shown.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/check.h"
#include "tokenizer/tokenizer.h"
#include "train/params_cli.h"
#include "train/trainer.h"

namespace tpro::cli {
namespace {

struct CheckArgs {
  TrainParams p;
  std::string sample = "dataset_check_sample.txt";
};

int run(const CheckArgs& a) {
  const TrainParams& p = a.p;
  if (p.model.empty()) fail("check needs --model (the tokenizer decides the token counts)");
  if (p.data.raw_text_file.empty() && p.data.rows_path().empty())
    fail("check needs a dataset: --raw-text-file, --dataset (with --format) or --jsonl-dataset");
  Tokenizer tok = Tokenizer::load(p.model);
  CheckReport r = check_dataset(data_options_from(p), tok, int(p.micro_batch_size),
                                int(effective_grad_accumulation(p)), p.epochs);
  std::fputs(format_check_report(r).c_str(), stdout);
  if (!a.sample.empty()) {
    write_check_sample(a.sample, r, tok);
    std::printf("sample of decoded blocks (untrained tokens between ⟦ ⟧): %s\n", a.sample.c_str());
  }
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<CheckArgs>();
  bind_cli(sub, &a->p, /*validate_after=*/false);
  sub->add_option("--sample-file", a->sample, "Where to write decoded sample blocks (empty: don't)");
  return [a] { return run(*a); };
}

TPRO_COMMAND("check", "Check a dataset with the training flags: blocks, tokens, suggested cutoff/warmup/save steps",
             setup);

}  // namespace
}  // namespace tpro::cli
