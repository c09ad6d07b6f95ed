// train/perplexity: the sliding-window recipe checked token by token against a brute-force
// reference (each token scored by its own forward pass over exactly the context the recipe
// gives it), the single-window case against evaluate_loss, the errors, and evaluations.csv
// (quoting, round trip, Training PRO's column order, malformed files).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "model/step.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer_step.h"
#include "train/perplexity.h"

using namespace tpro;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tpro_ppl_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

Model tiny_model() {
  LlamaConfig c;
  c.vocab_size = 64;
  c.n_embd = 32;
  c.n_ff = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 8;
  c.max_position = 64;
  fs::path d = temp_dir("model");
  write_random_model(d, c, 11, DType::F32, 0.2f);
  return load_model(d);
}

std::vector<int32_t> random_ids(int64_t n, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(splitmix64(seed + uint64_t(i)) % 64);
  return ids;
}

// −log p(ids[i] | ids[b..i-1]) by one forward over ids[b..i] scoring only the last token.
double token_nll(const Model& m, const LoraWeights* lw, const std::vector<int32_t>& ids, int64_t b, int64_t i) {
  const int64_t T = i - b + 1;
  Activations a;
  make_activations(a, m.cfg, lw, 1, T);
  std::vector<uint8_t> mask(size_t(T), 0);
  mask[size_t(T - 1)] = 1;
  StepInputs in{1, T, ids.data() + b, nullptr, nullptr, mask.data(), 1.0};
  StepOptions opt;
  opt.train = false;
  StepResult r = forward(m, lw, a, in, opt);
  EXPECT_EQ(r.n_trained, 1);
  return r.nll_sum;
}

// The recipe, stated per token: token i is scored by the first window (starts 0, s, 2s, ...,
// length L) that ends after it, unless it is that window's first token.
double brute_force_mean_nll(const Model& m, const LoraWeights* lw, const std::vector<int32_t>& ids, int64_t stride,
                            int64_t L, int64_t* scored) {
  const int64_t n = int64_t(ids.size());
  double sum = 0;
  *scored = 0;
  for (int64_t i = 1; i < n; ++i) {
    int64_t k = 0;
    while (std::min(k * stride + L, n) <= i) ++k;
    const int64_t b = k * stride;
    if (b == i) continue;
    sum += token_nll(m, lw, ids, b, i);
    ++*scored;
  }
  return sum / double(*scored);
}

}  // namespace

TEST(Perplexity, MatchesPerTokenReference) {
  const Model m = tiny_model();
  const auto ids = random_ids(41, 5);
  for (auto [stride, L] : {std::pair<int64_t, int64_t>{5, 16}, {1, 8}, {16, 16}, {7, 40}, {3, 64}}) {
    PerplexityOptions opt;
    opt.stride = stride;
    opt.max_length = L;
    const PerplexityResult r = evaluate_perplexity(m, nullptr, ids, opt);
    int64_t scored = 0;
    const double ref = brute_force_mean_nll(m, nullptr, ids, stride, L, &scored);
    EXPECT_EQ(r.n_scored, scored) << "stride " << stride << " L " << L;
    EXPECT_NEAR(r.nll, ref, 1e-5 * ref) << "stride " << stride << " L " << L;
    EXPECT_NEAR(r.perplexity, std::exp(ref), 1e-4 * std::exp(ref));
    EXPECT_EQ(r.n_tokens, 41);
    EXPECT_EQ(r.max_length, L);
  }
  // stride < L scores every token but the first, exactly once.
  PerplexityOptions opt;
  opt.stride = 4;
  opt.max_length = 10;
  EXPECT_EQ(evaluate_perplexity(m, nullptr, ids, opt).n_scored, 40);
  // stride == L: non-overlapping windows, each first token unscored; 41 tokens = 3 windows of 16, 16, 9.
  opt.stride = opt.max_length = 16;
  const PerplexityResult r = evaluate_perplexity(m, nullptr, ids, opt);
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.n_scored, 40 - 2);
}

TEST(Perplexity, OneWindowEqualsEvaluateLossAndUsesTheAdapter) {
  const Model m = tiny_model();
  const auto ids = random_ids(30, 9);
  PerplexityOptions opt;
  opt.stride = 30;
  opt.max_length = 0;  // the model's max_position (64) > 30 tokens: one window
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets.fill(true);
  Rng rng(2);
  LoraWeights lw = make_lora(m.cfg, lc, rng);
  for (size_t i = 0; i < lw.params.size(); ++i) lw.params[i] = 0.05f * float(int(i % 11) - 5);
  for (const LoraWeights* l : {static_cast<const LoraWeights*>(nullptr), static_cast<const LoraWeights*>(&lw)}) {
    const PerplexityResult r = evaluate_perplexity(m, l, ids, opt);
    EXPECT_EQ(r.windows, 1);
    EXPECT_EQ(r.max_length, 64);
    Activations a;
    make_activations(a, m.cfg, l, 1, 30);
    MicroBatch mb{1, 30, ids.data(), nullptr, nullptr, nullptr};
    int64_t n = 0;
    const double loss = evaluate_loss(m, l, a, {&mb, 1}, &n);
    EXPECT_EQ(n, r.n_scored);
    EXPECT_NEAR(r.nll, loss, 1e-6 * loss);
  }
  EXPECT_NE(evaluate_perplexity(m, nullptr, ids, opt).nll, evaluate_perplexity(m, &lw, ids, opt).nll);
}

TEST(Perplexity, TextThroughTheTokenizer) {
  const Model m = tiny_model();
  const Tokenizer tok = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  PerplexityOptions opt;
  opt.stride = 8;
  opt.max_length = 16;
  // Byte ids above 63 are outside the tiny model's vocabulary.
  EXPECT_EQ(error_of([&] { evaluate_perplexity(m, nullptr, tok, "hello", opt); }),
            "perplexity: token 0 has id 256, outside the model's vocabulary of 64");
  opt.add_bos = false;
  const std::string text = "0123456789:;<=>?0123456789";  // bytes 48..63
  const PerplexityResult r = evaluate_perplexity(m, nullptr, tok, text, opt);
  EXPECT_EQ(r.n_tokens, int64_t(text.size()));
  EXPECT_EQ(r.n_scored, int64_t(text.size()) - 1);
}

TEST(Perplexity, Errors) {
  const Model m = tiny_model();
  const auto ids = random_ids(20, 1);
  PerplexityOptions opt;
  opt.max_length = 65;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(m, nullptr, ids, opt); }),
            "perplexity: max_length must be in [2, 64] (the model's max_position_embeddings), got 65");
  opt.max_length = 16;
  opt.stride = 17;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(m, nullptr, ids, opt); }),
            "perplexity: stride must be in [1, max_length = 16], got 17 (hint: a stride above max_length would skip "
            "tokens)");
  opt.stride = 0;
  EXPECT_NE(error_of([&] { evaluate_perplexity(m, nullptr, ids, opt); }).find("stride must be in [1,"), std::string::npos);
  opt.stride = 4;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(m, nullptr, std::span<const int32_t>(ids.data(), 1), opt); }),
            "perplexity: the text has 1 token(s); at least 2 are needed to predict anything");
  int calls = 0;
  EXPECT_EQ(error_of([&] {
              evaluate_perplexity(m, nullptr, ids, opt, [&](int64_t done, int64_t total) {
                EXPECT_EQ(total, 2);  // [0, 16) then [4, 20), which reaches the end
                return ++calls < 2;
              });
            }),
            "perplexity evaluation cancelled");
  EXPECT_EQ(calls, 2);
}

TEST(EvaluationCsv, RoundTripAndQuoting) {
  const fs::path d = temp_dir("csv");
  const fs::path f = d / "evaluations.csv";
  EXPECT_TRUE(read_evaluation_csv(f).empty());
  EvaluationRow a{"models/tiny", "", "sample.txt", 12.5, 512, 0, "2024-05-01 12:00:00", ""};
  EvaluationRow b{"m,2", "lora \"x\"", "multi\nline.txt", 3.25, 8, 64, "2024-05-02 08:00:00", "a, b"};
  append_evaluation_csv(f, a);
  append_evaluation_csv(f, b);
  const std::string text = read_file(f);
  EXPECT_EQ(text.substr(0, text.find('\n')), "Model,LoRAs,Dataset,Perplexity,stride,max_length,Date,Comment");
  EXPECT_NE(text.find("\"m,2\",\"lora \"\"x\"\"\",\"multi\nline.txt\",3.25,8,64"), std::string::npos);
  const auto rows = read_evaluation_csv(f);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].model, "m,2");
  EXPECT_EQ(rows[1].loras, "lora \"x\"");
  EXPECT_EQ(rows[1].dataset, "multi\nline.txt");
  EXPECT_EQ(rows[1].perplexity, 3.25);
  EXPECT_EQ(rows[1].max_length, 64);
  EXPECT_EQ(rows[1].comment, "a, b");
  EXPECT_EQ(rows[0].perplexity, 12.5);
  EXPECT_EQ(rows[0].stride, 512);
}

TEST(EvaluationCsv, ReadsColumnsByNameAndReportsBadFiles) {
  const fs::path d = temp_dir("csvbad");
  const fs::path f = d / "e.csv";
  write_file_atomic(f, "Date,Model,LoRAs,Dataset,Perplexity,stride,max_length,Comment\r\n"
                       "2024-01-01,llama,,wikitext,5.5,512,0,\r\n");
  auto rows = read_evaluation_csv(f);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].model, "llama");
  EXPECT_EQ(rows[0].date, "2024-01-01");
  EXPECT_EQ(rows[0].perplexity, 5.5);
  write_file_atomic(f, "Model,LoRAs,Dataset,Perplexity,stride,Date,Comment\n");
  EXPECT_NE(error_of([&] { read_evaluation_csv(f); }).find(f.string() + ":1: missing column 'max_length'"),
            std::string::npos);
  write_file_atomic(f, "Model,LoRAs,Dataset,Perplexity,stride,max_length,Date,Comment\nm,,d,abc,1,2,x,\n");
  EXPECT_EQ(error_of([&] { read_evaluation_csv(f); }),
            f.string() + ": record 2: column Perplexity expects a number, got 'abc'");
  write_file_atomic(f, "Model,LoRAs,Dataset,Perplexity,stride,max_length,Date,Comment\nm,,d,1,1,2\n");
  EXPECT_EQ(error_of([&] { read_evaluation_csv(f); }), f.string() + ": record 2: 6 fields, the header has 8");
  EXPECT_EQ(error_of([&] { parse_csv("a,\"b\nc", "x.csv"); }), "x.csv:1: unterminated quoted field");
}
