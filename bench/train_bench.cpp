// tpro-bench: times LoRA training steps of a Llama-shaped model with random weights, the same
// shapes as ../shared/bench/ref_lora.py, and prints tokens/s (median step after warm-up), a
// per-phase breakdown and peak RSS, plus one "RESULT {json}" line for bench/run.sh.
// The model is written once to a cache folder (safetensors) and loaded like a real one.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "kernels/cpu/linear.h"
#include "model/model.h"
#include "train/optimizer_step.h"

using namespace tpro;

namespace {

LlamaConfig shape(const std::string& name) {
  LlamaConfig c;
  if (name == "smollm2-135m") {
    c.vocab_size = 49152, c.n_embd = 576, c.n_ff = 1536, c.n_layer = 30, c.n_head = 9, c.n_head_kv = 3;
    c.rope_theta = 100000.0, c.tie_word_embeddings = true;
  } else if (name == "tiny") {
    c.vocab_size = 32000, c.n_embd = 256, c.n_ff = 688, c.n_layer = 4, c.n_head = 8, c.n_head_kv = 4;
  } else {
    fail("unknown --config ", name, " (smollm2-135m, tiny)");
  }
  c.head_dim = c.n_embd / c.n_head;
  c.rms_norm_eps = 1e-5;
  c.max_position = 8192;
  return c;
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

// Sustained SGEMM rate on a training-like shape, for the FLOP-bound ceiling.
double gemm_gflops() {
  const int64_t M = 1024, N = 1536, K = 576;
  std::vector<float> A(M * K, 0.01f), B(N * K, 0.02f), C(M * N);
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * M * N * K / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpro-bench: LoRA training step throughput"};
  std::string config = "smollm2-135m", dtype = "f32", cache = "/tmp/tpro-bench-models";
  int64_t batch = 4, seq = 256, steps = 5, warmup = 2, rank = 16;
  double alpha = 32;
  bool gemm_only = false, recompute = false;
  app.add_option("--config", config, "Model shape (smollm2-135m, tiny)");
  app.add_option("--dtype", dtype, "Base weight storage: f32 or bf16");
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--steps", steps, "Timed steps");
  app.add_option("--warmup", warmup, "Untimed steps first");
  app.add_option("--rank", rank);
  app.add_option("--cache", cache, "Folder for the generated model");
  app.add_flag("--gemm", gemm_only, "Only print the sustained SGEMM GFLOP/s");
  app.add_flag("--recompute", recompute, "Recompute activations per layer in backward (gradient checkpointing)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (gemm_only) {
      std::printf("RESULT %s\n", nlohmann::json{{"gemm_gflops", gemm_gflops()}}.dump().c_str());
      return 0;
    }
    const LlamaConfig c = shape(config);
    const DType dt = dtype == "bf16" ? DType::BF16 : DType::F32;
    const fs::path dir = fs::path(cache) / (config + "-" + dtype);
    if (!fs::exists(dir / "model.safetensors")) write_random_model(dir, c, 0, dt, 0.02f);
    const double rss_before = peak_rss_mib();
    Model m = load_model(dir);
    LoraConfig lc;
    lc.r = rank;
    lc.alpha = alpha;
    lc.targets.fill(true);
    Rng rng(1);
    LoraWeights lw = make_lora(m.cfg, lc, rng);
    Activations a;
    make_activations(a, m.cfg, &lw, batch, seq, recompute);
    std::mt19937 gen(2);
    std::vector<int32_t> tokens(size_t(batch * seq));
    for (auto& t : tokens) t = int32_t(gen() % uint32_t(c.vocab_size));
    MicroBatch mb{batch, seq, tokens.data(), nullptr, nullptr, nullptr};
    OptimConfig oc;
    std::vector<double> times;
    double loss = 0;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      loss = optimizer_step(m, lw, a, {&mb, 1}, 2e-4, s + 1, uint64_t(s), oc).loss;
      double dt_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s >= warmup) times.push_back(dt_s);
      std::fprintf(stderr, "step %lld: %.3f s, loss %.4f\n", static_cast<long long>(s + 1), dt_s, loss);
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    const double tok_s = double(batch * seq) / med;
    nlohmann::json res = {{"impl", "tpro"},        {"config", config},           {"dtype", dtype},
                          {"batch", batch},        {"seq", seq},                 {"rank", rank},
                          {"median_step_s", med},  {"tokens_per_s", tok_s},      {"peak_rss_mib", peak_rss_mib()},
                          {"rss_before_model_mib", rss_before}, {"final_loss", loss},
                          {"recompute", recompute},   {"activation_mib", double(a.arena.bytes()) / 1048576.0}};
    std::printf("tpro %s %s B%lld x T%lld: %.1f tok/s (median step %.3f s), peak RSS %.0f MiB\n", config.c_str(),
                dtype.c_str(), static_cast<long long>(batch), static_cast<long long>(seq), tok_s, med, peak_rss_mib());
    std::printf("RESULT %s\n", res.dump().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "tpro-bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
