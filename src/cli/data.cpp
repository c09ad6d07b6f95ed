// `tpro data ...`: Training PRO's dataset tools (data/tools.h). json-to-jsonl and txt-to-jsonl
// convert to chat rows, split makes train/eval (or N part) files, dump-blocks writes every
// decoded block a run with the same training flags trains on, with its token count. Outputs
// are written atomically and never over an existing file without --force.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "data/codec.h"
#include "data/dataset.h"
#include "data/packing.h"
#include "data/tools.h"
#include "tokenizer/tokenizer.h"
#include "train/params_cli.h"
#include "train/trainer.h"

namespace tpro::cli {
namespace {

constexpr const char* kDefaultSystem = "You are a helpful AI assistant.";  // Training PRO's default

struct DataArgs {
  std::string in, out, system = kDefaultSystem, prompt;
  bool array = false, force = false, no_shuffle = false, mark_untrained = false;
  double eval_percent = 0;
  int64_t parts = 0;
  uint64_t seed = 42;
  TrainParams p;
};

// "data/alpaca.json" -> "data/alpaca<suffix>" with the extension `ext` (".jsonl"), or the input's own.
fs::path sibling(const fs::path& in, const std::string& suffix, const std::string& ext = "") {
  return in.parent_path() / (in.stem().string() + suffix + (ext.empty() ? in.extension().string() : ext));
}

int json_to_jsonl(const DataArgs& a) {
  const JsonRows rows = read_json_rows(a.in, false);
  const fs::path out = a.out.empty() ? sibling(a.in, "", ".jsonl") : fs::path(a.out);
  if (out == fs::path(a.in)) fail("the output would overwrite the input ", a.in, " (hint: -o another file)");
  const auto chat = instructions_to_chat(rows, a.system);
  write_new_file(out, rows_text(chat, a.array), a.force);
  std::printf("wrote %zu chat rows to %s\n", chat.size(), out.string().c_str());
  return 0;
}

int txt_to_jsonl(const DataArgs& a) {
  const auto chat = text_to_chat(read_file(a.in), a.system, a.prompt);
  if (chat.empty())
    fail(a.in, ": no text block (hint: blocks are separated by at least two empty lines, \"\\n\\n\\n\")");
  const fs::path out = a.out.empty() ? sibling(a.in, "", ".jsonl") : fs::path(a.out);
  write_new_file(out, rows_text(chat, a.array), a.force);
  std::printf("wrote %zu chat rows to %s\n", chat.size(), out.string().c_str());
  return 0;
}

int split(const DataArgs& a) {
  if ((a.eval_percent > 0) == (a.parts > 0)) fail("split needs one of --eval-percent or --parts");
  const JsonRows rows = read_json_rows(a.in, false);
  const bool array = a.array || fs::path(a.in).extension() == ".json";  // keep the input's form
  std::vector<std::vector<nlohmann::ordered_json>> sets;
  std::vector<fs::path> outs;
  if (a.eval_percent > 0) {
    sets = split_by_percent(rows, a.eval_percent, !a.no_shuffle, a.seed);
    outs = {sibling(a.in, "_train"), sibling(a.in, "_eval")};
  } else {
    sets = split_into_parts(rows, a.parts, !a.no_shuffle, a.seed);
    for (int64_t k = 1; k <= a.parts; ++k) outs.push_back(sibling(a.in, "_part" + std::to_string(k)));
  }
  std::error_code ec;
  for (const auto& o : outs)  // all refused before any is written
    if (fs::exists(o, ec) && !a.force) fail(o.string(), " exists (hint: --force to overwrite it)");
  for (size_t k = 0; k < outs.size(); ++k) {
    write_new_file(outs[k], rows_text(sets[k], array), a.force);
    std::printf("%s: %zu rows\n", outs[k].string().c_str(), sets[k].size());
  }
  return 0;
}

int dump_blocks(const DataArgs& a) {
  const TrainParams& p = a.p;
  if (p.model.empty()) fail("dump-blocks needs --model (its tokenizer makes the blocks)");
  if (p.data.raw_text_file.empty() && p.data.rows_path().empty())
    fail("dump-blocks needs a dataset: --raw-text-file, --dataset (with --format) or --jsonl-dataset");
  const fs::path out = a.out.empty() ? fs::path("dataset_dump.jsonl") : fs::path(a.out);
  std::error_code ec;
  if (fs::exists(out, ec) && !a.force) fail(out.string(), " exists (hint: --force to overwrite it)");
  const Tokenizer tok = Tokenizer::load(p.model);
  const DataOptions opt = data_options_from(p);
  Dataset ds = build_dataset(opt, tok);
  if (opt.pack_samples) ds.train = pack_blocks(ds.train, opt.cutoff_len);  // the rows the batcher serves
  write_new_file(out, dump_blocks_jsonl(ds.train, ds.eval, codec_of(tok), a.mark_untrained), a.force);
  std::printf("wrote %zu training and %zu eval blocks to %s\n", ds.train.size(), ds.eval.size(), out.string().c_str());
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<DataArgs>();
  sub->require_subcommand(1);
  auto common = [&](CLI::App* c, const char* out_help) {
    c->add_option("-o,--output", a->out, out_help);
    c->add_flag("--force", a->force, "Overwrite an existing output file");
  };
  CLI::App* j = sub->add_subcommand("json-to-jsonl", "Training PRO instruction JSON ({instruction, output[, input]}) "
                                                     "to chat rows ({messages: [system, user, assistant]})");
  j->add_option("input", a->in, "Instruction dataset (.json array or .jsonl)")->required();
  j->add_option("--system", a->system, "System message of every row (empty: none)");
  j->add_flag("--array", a->array, "Write one JSON array (what Training PRO reads) instead of JSON Lines");
  common(j, "Output file (default: the input with .jsonl)");
  CLI::App* t = sub->add_subcommand("txt-to-jsonl", "Text blocks separated by two empty lines to chat rows "
                                                    "(system, user: --prompt, assistant: the block)");
  t->add_option("input", a->in, "Text file")->required();
  t->add_option("--prompt", a->prompt, "User message of every row")->required();
  t->add_option("--system", a->system, "System message of every row");
  t->add_flag("--array", a->array, "Write one JSON array (what Training PRO reads) instead of JSON Lines");
  common(t, "Output file (default: the input with .jsonl)");
  CLI::App* s = sub->add_subcommand("split", "Split a .json/.jsonl dataset into <name>_train/_eval by a percentage, "
                                             "or into <name>_part1.._partN");
  s->add_option("input", a->in, "Dataset (.json array or .jsonl)")->required();
  s->add_option("--eval-percent", a->eval_percent, "Percent of rows for <name>_eval (Training PRO's split)");
  s->add_option("--parts", a->parts, "Number of near-equal parts instead");
  s->add_option("--seed", a->seed, "Shuffle seed");
  s->add_flag("--no-shuffle", a->no_shuffle, "Keep the file order");
  s->add_flag("--array", a->array, "Write JSON arrays even for a .jsonl input");
  s->add_flag("--force", a->force, "Overwrite existing outputs");
  CLI::App* d = sub->add_subcommand("dump-blocks", "Write every decoded block a run with these training flags trains "
                                                   "on (JSON Lines: split, kind, tokens, trained, text)");
  bind_cli(d, &a->p, /*validate_after=*/false);
  d->add_flag("--mark-untrained", a->mark_untrained, "Put untrained tokens between ⟦ and ⟧");
  common(d, "Output file (default: dataset_dump.jsonl)");
  return [a, j, t, s, d]() -> int {
    if (j->parsed()) return json_to_jsonl(*a);
    if (t->parsed()) return txt_to_jsonl(*a);
    if (s->parsed()) return split(*a);
    if (d->parsed()) return dump_blocks(*a);
    fail("data needs a tool: json-to-jsonl, txt-to-jsonl, split or dump-blocks");
  };
}

TPRO_COMMAND("data", "Dataset tools: json-to-jsonl, txt-to-jsonl, split, dump-blocks (Training PRO's Tools tab)", setup);

}  // namespace
}  // namespace tpro::cli
