// Writes the seed corpora of the fuzz harnesses, fuzz/corpus/<target>/, with tpro's own
// writers (so seeds are valid files of today's formats) plus the chat template fixtures.
// Deterministic: rerunning it rewrites the same bytes. Usage (scripts/fuzz.sh --seeds):
//   build-fuzz/fuzz/fuzz_make_seeds <repo root>
// Seeds of multi-file targets join their files with fuzz_util.h's separator line.
#include <cstdio>
#include <map>

#include "core/file.h"
#include "data/batcher.h"
#include "fuzz_checkpoint_util.h"
#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "formats/peft_adapter.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/params.h"

using namespace tpro;
using json = nlohmann::json;

namespace {

fs::path g_root;  // fuzz/corpus

void seed(const std::string& target, const std::string& name, std::string_view bytes) {
  fs::path dir = g_root / target;
  fs::create_directories(dir);
  write_file_atomic(dir / name, bytes);
  std::printf("%-14s %-28s %6zu bytes\n", target.c_str(), name.c_str(), bytes.size());
}

std::string read(const fs::path& p) { return read_file(p); }

// ---- safetensors -------------------------------------------------------------------------

void safetensors_seeds(const fs::path& model_dir) {
  SafeTensorsWriter w;
  const float f[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
  const uint16_t h[4] = {0x3c00, 0xc000, 0x7c00, 0x0001};
  w.add_f32("a.weight", {2, 3}, f);
  w.add("b.bf16", DType::BF16, {4}, h);
  w.add("c.f16", DType::F16, {2, 2}, h);
  w.add_f32("scalar", {}, f);
  w.add_f32("empty", {0, 3}, f);
  w.set_metadata("format", "pt");
  const fs::path p = fuzz::scratch_dir() / "mixed.safetensors";
  w.write(p);
  seed("safetensors", "mixed.safetensors", read(p));
  seed("safetensors", "tiny_model.safetensors", read(model_dir / "model.safetensors"));
}

// ---- GGUF models and vocabularies ----------------------------------------------------------

std::vector<GgufKV> spm_vocab() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"};
  std::vector<float> scores = {0, 0, 0, -1, -2, -3, -1.5f, -2.5f};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1};
  for (int b = 0; b < 8; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", 0x40 + b);
    tokens.push_back(buf), scores.push_back(0), types.push_back(6);
  }
  return {{"tokenizer.ggml.model", "llama"},          {"tokenizer.ggml.tokens", tokens},
          {"tokenizer.ggml.scores", scores},          {"tokenizer.ggml.token_type", types},
          {"tokenizer.ggml.bos_token_id", uint32_t(1)}, {"tokenizer.ggml.eos_token_id", uint32_t(2)},
          {"tokenizer.ggml.add_bos_token", true},     {"tokenizer.chat_template", "{{ messages[0]['content'] }}"}};
}

std::vector<GgufKV> bpe_vocab() {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  const Tokenizer t = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  for (int32_t i = 0; i < t.vocab_size(); ++i) {
    tokens.push_back(t.id_to_piece(i));
    types.push_back(t.is_special(i) ? 3 : 1);
  }
  tokens.push_back("\xC4\xA0t"), types.push_back(1);  // "Ġt", made by the merge below
  return {{"tokenizer.ggml.model", "gpt2"},
          {"tokenizer.ggml.pre", "llama-bpe"},
          {"tokenizer.ggml.tokens", tokens},
          {"tokenizer.ggml.token_type", types},
          {"tokenizer.ggml.merges", std::vector<std::string>{"\xC4\xA0 t"}},
          {"tokenizer.ggml.bos_token_id", uint32_t(kByteLevelBosId)},
          {"tokenizer.ggml.eos_token_id", uint32_t(kByteLevelEosId)},
          {"tokenizer.ggml.padding_token_id", uint32_t(kByteLevelPadId)}};
}

void gguf_seeds(const Model& tiny) {
  const fs::path p = fuzz::scratch_dir() / "seed.gguf";
  GgufModelOptions o;
  o.name = "tiny";
  o.metadata = spm_vocab();
  save_model_gguf(p, tiny, o);
  seed("gguf", "tiny_f32_spm.gguf", read(p));

  // Q8_0/Q4_0 need rows of 32 columns: a second model, 32 wide.
  LlamaConfig c = fuzz::tiny_config();
  c.n_embd = 32, c.n_ff = 32, c.head_dim = 16, c.tie_word_embeddings = false;
  const fs::path dir = fuzz::scratch_dir() / "wide";
  write_random_model(dir, c, 11, DType::F16);
  const Model wide = load_model(dir);
  o.weights = WType::Q8_0;
  o.embeddings = WType::Q4_0;
  o.metadata = {};
  save_model_gguf(p, wide, o);
  seed("gguf", "wide_q8_q4.gguf", read(p));

  GgufWriter w;  // a vocabulary alone (Tokenizer::load of a vocab-only GGUF)
  w.set("general.architecture", "llama");
  for (const GgufKV& kv : bpe_vocab()) w.set(kv.key, kv.value);
  w.write(p);
  seed("gguf", "vocab_gpt2.gguf", read(p));
}

// ---- tokenizer.json --------------------------------------------------------------------------

void tokenizer_seeds() {
  seed("tokenizer_json", "byte_level.json",
       fuzz::join_files({byte_level_tokenizer_json(), byte_level_tokenizer_config_json()}));

  json bpe = json::parse(byte_level_tokenizer_json());
  bpe["model"]["vocab"]["\xC4\xA0t"] = 256;  // model ids are 0..n-1: the added tokens move up one
  for (json& t : bpe["added_tokens"]) t["id"] = t["id"].get<int>() + 1;
  bpe["post_processor"]["special_tokens"]["<|bos|>"]["ids"] = {kByteLevelBosId + 1};
  bpe["model"]["merges"] = json::array({"\xC4\xA0 t"});
  bpe["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"},
                             {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                             {"behavior", "Isolated"},
                             {"invert", false}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", false}}}}};
  seed("tokenizer_json", "llama3_style.json", bpe.dump());

  json spm = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
  spm["added_tokens"] = json::array();
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int i = 0; i < 3; ++i)
    spm["added_tokens"].push_back({{"id", i}, {"content", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"},
                                   {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                                   {"normalized", false}, {"special", true}});
  for (int b = 0; b < 256; b += 5) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = 3 + b / 5;
  }
  int64_t next = 3 + 52;
  for (const char* p : {"\xE2\x96\x81", "h", "e", "l", "o", "\xE2\x96\x81h", "ll", "\xE2\x96\x81he", "llo"})
    vocab[p] = next++;
  spm["model"] = {{"type", "BPE"},           {"dropout", nullptr},    {"unk_token", "<unk>"},
                  {"fuse_unk", true},        {"byte_fallback", true}, {"vocab", vocab},
                  {"merges", {"\xE2\x96\x81 h", "l l", "\xE2\x96\x81h e", "ll o"}}};
  spm["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
  spm["pre_tokenizer"] = nullptr;
  spm["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  spm["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  const json cfg = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", true},
                    {"add_eos_token", false}, {"chat_template", "{{ bos_token }}{{ messages[0]['content'] }}"}};
  seed("tokenizer_json", "spm_byte_fallback.json", fuzz::join_files({spm.dump(), cfg.dump()}));
}

// ---- adapters and checkpoints ----------------------------------------------------------------

LoraWeights lora(const LlamaConfig& c, int64_t r, const char* targets, bool rslora, uint64_t seed_) {
  LoraConfig lc;
  lc.r = r;
  lc.alpha = 2.0 * double(r);
  lc.rslora = rslora;
  lc.targets = parse_targets(targets);
  Rng rng(seed_);
  LoraWeights lw = make_lora(c, lc, rng);
  for (size_t i = 0; i < lw.params.size(); ++i) lw.params[i] = float(int(i % 7) - 3) / 8.0f;  // B nonzero
  return lw;
}

void adapter_seeds(const Model& tiny) {
  struct Case {
    const char* name;
    LoraWeights lw;
  };
  const Case cases[] = {{"r2_qv", lora(tiny.cfg, 2, "q,v", false, 1)},
                        {"r1_all_rslora", lora(tiny.cfg, 1, "all", true, 2)}};
  for (const Case& c : cases) {
    const fs::path dir = fuzz::scratch_dir() / "seed_adapter" / c.name;
    save_adapter(dir, c.lw, "tiny");
    seed("peft_adapter", std::string(c.name) + ".bin",
         fuzz::join_files({read(dir / "adapter_config.json"), read(dir / "adapter_model.safetensors")}));
    const fs::path g = fuzz::scratch_dir() / "seed_adapter.gguf";
    save_adapter_gguf(g, c.lw, tiny.cfg, "tiny", GgmlType::F32);
    seed("gguf_adapter", std::string(c.name) + "_f32.gguf", read(g));
    save_adapter_gguf(g, c.lw, tiny.cfg, "", GgmlType::F16);
    seed("gguf_adapter", std::string(c.name) + "_f16.gguf", read(g));
  }
}

// torch.save archives: python3-torch's own files (tests/io/gen_torch_fixtures.py writes them;
// tpro has no pickle writer), peft_fuzz_tiny's sized for the tiny model.
void torch_pickle_seeds(const fs::path& repo) {
  const fs::path dir = repo / "tests/fixtures/torch";
  for (const char* f : {"mixed.bin", "mixed_protocol4.bin", "transposed.bin", "os_system.bin", "legacy.bin"})
    seed("torch_pickle", f, read(dir / f));
  for (const char* f : {"peft_fuzz_tiny", "peft_f16", "peft_bf16"})
    seed("torch_pickle", std::string(f) + ".bin", read(dir / f / "adapter_model.bin"));
}

void checkpoint_seeds(const Model& tiny) {
  LoraWeights lw = fuzz::checkpoint_lora(tiny.cfg);
  auto &m = lw.state_named("adamw.exp_avg").f32, &v = lw.state_named("adamw.exp_avg_sq").f32;
  for (size_t i = 0; i < m.size(); ++i) m[i] = 1e-3f * float(i % 5), v[i] = 1e-6f * float(i % 3);
  Batcher b = fuzz::checkpoint_batcher();
  for (int i = 0; i < 3; ++i) (void)b.next();
  b.observe_loss(2, 2.0);
  TrainerState st;
  st.step = 2;
  st.epoch = 0.4;
  st.loss = 2.0;
  st.loss_threshold = 1.5;
  st.batcher = b.state();
  RunLog log;
  for (int s = 1; s <= 2; ++s) {
    LogRecord r;
    r.step = s, r.epoch = 0.2 * s, r.loss = 2.5 - 0.25 * s, r.lr = 1e-4, r.grad_norm = 0.5;
    if (s == 2) r.eval_loss = 2.25;
    log.add(r);
  }
  const fs::path adir = fuzz::fresh_dir("seed_run");
  const fs::path dir = save_checkpoint(adir, lw, st, log, json::object(), "tiny");
  std::vector<std::string> parts;
  for (const char* f : fuzz::kCheckpointFiles) parts.push_back(read(dir / f));
  seed("checkpoint", "step2.bin", fuzz::join_files(parts));
  parts.pop_back();  // no training_graph.json
  seed("checkpoint", "step2_no_graph.bin", fuzz::join_files(parts));
}

// ---- text formats ------------------------------------------------------------------------

void jinja_seeds(const fs::path& repo) {
  for (const auto& e : fs::directory_iterator(repo / "tests/fixtures/chat_templates/templates"))
    seed("jinja", e.path().filename().string(), read(e.path()));
}

void params_seeds() {
  seed("train_params", "run.yaml",
       "model: models/tiny\nlora_name: demo\nlora_rank: 8\nlora_alpha: 16\nlearning_rate: 3e-4\n"
       "lr_scheduler_type: cosine\nwarmup_steps: 10\nmicro_batch_size: 2\ngrad_accumulation: 4\n"
       "epochs: 2\ntraining_projection: q-k-v-o\ntarget_modules: [q_proj, v_proj]\n"
       "jsonl_dataset: data/chat.jsonl\ncutoff_len: 256\n");
  TrainParams p;
  p.model = "models/tiny";
  p.lora_name = "demo";
  p.data.jsonl_dataset = "data/chat.jsonl";
  json j = to_json(p);
  seed("train_params", "training_parameters.json", j.dump(1));
  seed("train_params", "training_pro.json",
       R"({"model": "m", "lora_name": "x", "lora_RS": true, "datasetJSONL": "a.jsonl", "eval_stepsJSONL": 5, "lora_rank": 4,)"
       R"( "lora_alpha": 8, "lr_scheduler_type": "FP_low_epoch_annealing", "precize_slicing_overlap": true,)"
       R"( "num_cycles": 2, "warmup_ratio": 0.1})");
}

void dataset_seeds() {
  // First byte: the harness's settings bits (fuzz_dataset_rows.cpp).
  seed("dataset_rows", "chat.jsonl",
       std::string("\x00", 1) +
           R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})"
           "\n"
           R"({"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]})"
           "\n\n");
  seed("dataset_rows", "chat_packed_bad_line.jsonl",
       std::string("\x4c") +  // skip_bad_lines, train_on_inputs, pack_samples
           R"({"messages": [{"role": "user", "content": "a long question about nothing in particular"}, {"role": "assistant", "content": "and a long answer"}]})"
           "\n{not json\n"
           R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})"
           "\n");
  seed("dataset_rows", "alpaca.json",
       std::string("\xA3") +  // .json, format file, add_eos_token, train_only_after
           R"([{"instruction": "Add", "input": "2 and 2", "output": "4"}, {"instruction": "Greet", "output": "Hi"},)"
           R"( {"text": "plain row"}])");
  seed("dataset_rows", "alpaca_long.jsonl",
       std::string("\x12") +  // format file, eliminate_long_blocks
           R"({"instruction": "Write a sentence that is far longer than the cutoff of one hundred and twenty-eight tokens, which it is, since every byte is a token and this instruction goes on and on", "output": "No."})"
           "\n" R"({"instruction": "Short", "output": "Yes"})" "\n");
}

// ---- libFuzzer dictionaries (fuzz/dict/<target>.dict): tokens mutations splice in -----------

std::string dict_line(std::string_view token) {
  std::string out = "\"";
  for (unsigned char c : token) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else out += char(c);
  }
  return out + "\"\n";
}

void dict(const std::string& target, const std::vector<std::string>& tokens) {
  static const std::vector<std::string> kJson = {"{", "}", "[", "]", ":", ",", "\"", "\"\"", "null", "true",
                                                 "false", "-1", "0", "1e400", "-0.0", "9223372036854775808",
                                                 "\"\\u0000\"", "\"\\ud800\""};
  std::string out = "# " + target + ": written by fuzz/make_seeds.cpp\n";
  const bool json_target = target != "jinja" && target != "torch_pickle";
  for (const auto* list : {json_target ? &kJson : nullptr, &tokens})
    if (list)
      for (const std::string& t : *list) out += dict_line(t);
  fs::create_directories(g_root.parent_path() / "dict");
  write_file_atomic(g_root.parent_path() / "dict" / (target + ".dict"), out);
}

void dicts() {
  dict("jinja", {"{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "for ", " in ", "endfor", "if ",
                 "elif ", "else", "endif", "set ", "endset", "macro ", "endmacro", "call", "endcall", "filter ",
                 "endfilter", "generation", "endgeneration", "break", "continue", "recursive", "namespace(",
                 "loop.index0", "loop.last", "range(", "messages", "message['content']", "message.role",
                 "raise_exception(", "tojson", "| ", "~", " is ", " not ", " and ", " or ", "none", "None", "[::-1]",
                 "(", ")", ".", ",", "**", "//", "selectattr(", "map(", "join(", "trim", "length", "items()",
                 "strftime_now(", "'", "\"", ".split(", ".strip(", "startswith(", "add_generation_prompt",
                 "bos_token", "eos_token", "tools", "defined", "string", "mapping", "indent(", "replace(", "lower",
                 "upper", "first", "last", "count", "default(", "batch(", "slice(", "dictsort", "unique", "sum"});
  dict("tokenizer_json",
       {"\"model\"", "\"type\"", "\"BPE\"", "\"vocab\"", "\"merges\"", "\"added_tokens\"", "\"id\"",
        "\"content\"", "\"special\"", "\"normalizer\"", "\"pre_tokenizer\"", "\"pretokenizers\"",
        "\"decoder\"", "\"decoders\"", "\"post_processor\"", "\"Sequence\"", "\"ByteLevel\"", "\"Split\"",
        "\"Regex\"", "\"String\"", "\"Metaspace\"", "\"Replace\"", "\"Prepend\"", "\"NFC\"",
        "\"ByteFallback\"", "\"Fuse\"", "\"Strip\"", "\"TemplateProcessing\"", "\"byte_fallback\"",
        "\"unk_token\"", "\"continuing_subword_prefix\"", "\"end_of_word_suffix\"", "\"ignore_merges\"",
        "\"bos_token\"", "\"eos_token\"", "\"add_bos_token\"", "\"chat_template\"", "\"lstrip\"",
        "\"rstrip\"", "\"single_word\"", "\"normalized\"", "\"behavior\"", "\"Isolated\"", "\"invert\"",
        "(?i:", "\\p{L}", "\\s+(?!\\S)", "<0x41>", "\xE2\x96\x81", "\xC4\xA0"});
  std::vector<std::string> params;
  for (const std::string& n : param_names()) params.push_back("\"" + n + "\"");
  for (const std::string& n : param_names()) params.push_back(n + ": ");
  dict("train_params", params);
  dict("dataset_rows", {"\"messages\"", "\"conversations\"", "\"role\"", "\"content\"", "\"from\"",
                        "\"value\"", "\"user\"", "\"assistant\"", "\"system\"", "\"tool\"", "\"human\"",
                        "\"gpt\"", "\"instruction\"", "\"input\"", "\"output\"", "\"text\"", "<s>", "</s>"});
  dict("peft_adapter", {"\"r\"", "\"lora_alpha\"", "\"target_modules\"", "\"use_rslora\"", "\"peft_type\"",
                        "\"LORA\"", "\"q_proj\"", "\"v_proj\"", "\"down_proj\"", "\"dtype\"", "\"F32\"",
                        "\"F16\"", "\"BF16\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"",
                        "base_model.model.model.layers.", ".self_attn.q_proj.lora_A.weight", ".lora_B.weight"});
  dict("torch_pickle", {"collections\nOrderedDict\n", "torch._utils\n_rebuild_tensor_v2\n", "torch\nFloatStorage\n",
                        "torch\nHalfStorage\n", "torch\nBFloat16Storage\n", "storage", "cpu", "PK\x03\x04",
                        "PK\x01\x02", "PK\x05\x06", "archive/data.pkl", "archive/data/0", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"});
  dict("checkpoint", {"\"step\"", "\"epoch\"", "\"loss\"", "\"loss_threshold\"", "\"batcher\"",
                      "\"extra\"", "\"adamw.exp_avg\"", "\"adamw.exp_avg_sq\"", "\"r\"", "\"lora_alpha\"",
                      "\"target_modules\"", "\"format\"", "\"tpro-batcher\"", "\"version\"", "\"rows\"",
                      "\"fingerprint\"", "\"micro_batch_size\"", "\"cursor\"", "\"plan\"", "\"rng\"",
                      "\"phase\"", "\"pairing_until_epoch\"", "\"switch_pending\"", "\"pending_reason\"",
                      "\"switches\"", "\"index_in_epoch\"", "\"reason\""});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <repo root>  (writes <repo root>/fuzz/corpus/<target>/)\n", argv[0]);
    return 2;
  }
  try {
    const fs::path repo = argv[1];
    g_root = repo / "fuzz" / "corpus";
    const fs::path model_dir = fuzz::scratch_dir() / "base";
    const Model& tiny = fuzz::tiny_model();
    safetensors_seeds(model_dir);
    gguf_seeds(tiny);
    tokenizer_seeds();
    adapter_seeds(tiny);
    torch_pickle_seeds(repo);
    checkpoint_seeds(tiny);
    jinja_seeds(repo);
    params_seeds();
    dataset_seeds();
    dicts();
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
