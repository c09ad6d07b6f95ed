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

#include "best_of.h"
#include "core/error.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "kernels/cpu/gemm.h"
#include "model/base_weights.h"
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

// Sustained GEMM rate (f32, or bf16 inputs with f32 sums) on a training-like shape (the
// gate/up projection of 4 x 256 tokens), best of 9, for the FLOP-bound ceiling.
double gemm_gflops(bool bf16) {
  const int64_t M = 1024, N = 1536, K = 576;
  std::vector<float> A(M * K, 0.01f), B(N * K, 0.02f), C(M * N);
  std::vector<uint16_t> A16(A.size()), B16(B.size());
  convert_f32_to_bf16(A.data(), A16.data(), int64_t(A.size()));
  convert_f32_to_bf16(B.data(), B16.data(), int64_t(B.size()));
  const double best = best_of([&] {
    if (bf16) {
      gemm_bf16(false, true, M, N, K, 1.0f, A16.data(), K, B16.data(), K, 0.0f, C.data(), N);
    } else {
      sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
    }
  });
  return 2.0 * M * N * K / best / 1e9;
}

// --profile: the CPU backend with every op timed (wall clock, summed over calls).
enum Op { kLinF, kLinB, kLoraF, kLoraB, kBf16, kNormF, kNormB, kRope, kAttF, kAttB, kSwiF, kSwiB, kEmb, kCe, kOps };
const char* const kOpNames[kOps] = {"linear fwd", "linear bwd", "lora fwd", "lora bwd", "to bf16", "rmsnorm fwd",
                                    "rmsnorm bwd",
                                    "rope", "attention fwd", "attention bwd", "swiglu fwd", "swiglu bwd",
                                    "embedding", "cross-entropy"};
double g_op_s[kOps];
Backend g_cpu;

struct OpTimer {
  Op op;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~OpTimer() { g_op_s[op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

Backend timed_backend() {
  g_cpu = cpu_backend();
  Backend b = g_cpu;
  b.name = "cpu (timed)";
  b.linear_forward = [](float* o, const float* x, const WeightMatrix& W, const float* bias, int64_t N, bool acc,
                        const uint16_t* x16) {
    OpTimer t{kLinF};
    g_cpu.linear_forward(o, x, W, bias, N, acc, x16);
  };
  b.linear_backward = [](float* dx, const float* dy, const WeightMatrix& W, int64_t N, bool acc,
                         const uint16_t* dy16) {
    OpTimer t{kLinB};
    g_cpu.linear_backward(dx, dy, W, N, acc, dy16);
  };
  b.lora_forward = [](float* o, float* u, const float* x, const float* A, const float* B, float s,
                      const LoraDropout& d, int64_t N, int64_t I, int64_t O, int64_t R, const uint16_t* x16) {
    OpTimer t{kLoraF};
    g_cpu.lora_forward(o, u, x, A, B, s, d, N, I, O, R, x16);
  };
  b.lora_backward = [](float* dx, float* dA, float* dB, const float* dy, const float* x, const float* u,
                       const float* A, const float* B, float s, const LoraDropout& d, int64_t N, int64_t I,
                       int64_t O, int64_t R, const uint16_t* dy16, const uint16_t* x16) {
    OpTimer t{kLoraB};
    g_cpu.lora_backward(dx, dA, dB, dy, x, u, A, B, s, d, N, I, O, R, dy16, x16);
  };
  b.to_bf16 = [](const float* src, uint16_t* dst, int64_t n) {
    OpTimer t{kBf16};
    g_cpu.to_bf16(src, dst, n);
  };
  b.rmsnorm_forward = [](float* o, float* r, const float* x, const float* w, float eps, int64_t N, int64_t D) {
    OpTimer t{kNormF};
    g_cpu.rmsnorm_forward(o, r, x, w, eps, N, D);
  };
  b.rmsnorm_backward = [](float* dx, const float* dy, const float* x, const float* w, const float* r, int64_t N,
                          int64_t D) {
    OpTimer t{kNormB};
    g_cpu.rmsnorm_backward(dx, dy, x, w, r, N, D);
  };
  b.rope_forward = [](float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh, bool inv) {
    OpTimer t{kRope};
    g_cpu.rope_forward(x, pos, rt, N, H, Dh, inv);
  };
  b.attention_forward = [](float* o, float* lse, const float* q, const float* k, const float* v, const int32_t* seg,
                           const AttnShape& s, int64_t kvs) {
    OpTimer t{kAttF};
    g_cpu.attention_forward(o, lse, q, k, v, seg, s, kvs);
  };
  b.attention_backward = [](float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const int32_t* seg,
                            const AttnShape& s) {
    OpTimer t{kAttB};
    g_cpu.attention_backward(dq, dk, dv, dout, q, k, v, out, lse, seg, s);
  };
  b.swiglu_forward = [](float* o, const float* g, const float* u, int64_t n) {
    OpTimer t{kSwiF};
    g_cpu.swiglu_forward(o, g, u, n);
  };
  b.swiglu_backward = [](float* dg, float* du, const float* dy, const float* g, const float* u, int64_t n) {
    OpTimer t{kSwiB};
    g_cpu.swiglu_backward(dg, du, dy, g, u, n);
  };
  b.embedding_forward = [](float* o, const int32_t* tok, const WeightMatrix& e, int64_t N) {
    OpTimer t{kEmb};
    g_cpu.embedding_forward(o, tok, e, N);
  };
  b.cross_entropy_fused = [](float* l, const int32_t* tg, const float* w, int64_t n, int64_t V, float* nll,
                             bool grad) {
    OpTimer t{kCe};
    return g_cpu.cross_entropy_fused(l, tg, w, n, V, nll, grad);
  };
  return b;
}

// Forward + backward of one micro-batch per step through the timed backend; prints each op's
// share of the step time (the optimizer update and the step's glue are the remainder).
void profile_steps(const Model& m, LoraWeights& lw, Activations& a, const MicroBatch& mb, int64_t steps) {
  const Backend be = timed_backend();
  double total = 0;
  for (int64_t s = 0; s <= steps; ++s) {
    if (s == 1) std::fill(g_op_s, g_op_s + kOps, 0.0), total = 0;  // step 0 warms up
    auto t0 = std::chrono::steady_clock::now();
    zero_grads(lw);
    StepInputs in{mb.B, mb.T, mb.tokens, nullptr, nullptr, nullptr, double(count_trained(mb))};
    StepOptions opt;
    forward(m, &lw, a, in, opt, be);
    backward(m, lw, a, in, opt, be);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  double ops = 0;
  for (int i = 0; i < kOps; ++i) {
    ops += g_op_s[i];
    std::printf("%-16s %8.1f ms/step %5.1f%%\n", kOpNames[i], 1e3 * g_op_s[i] / double(steps),
                100.0 * g_op_s[i] / total);
  }
  std::printf("%-16s %8.1f ms/step %5.1f%%\n", "other", 1e3 * (total - ops) / double(steps),
              100.0 * (total - ops) / total);
  std::printf("%-16s %8.1f ms/step, %.1f tok/s (forward + backward only)\n", "total", 1e3 * total / double(steps),
              double(mb.B * mb.T) * double(steps) / total);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpro-bench: LoRA training step throughput"};
  std::string config = "smollm2-135m", dtype = "f32", compute = "auto", cache = "/tmp/tpro-bench-models";
  int64_t batch = 4, seq = 256, steps = 5, warmup = 2, rank = 16;
  double alpha = 32;
  bool gemm_only = false, recompute = false, profile = false, pack = true;
  app.add_option("--config", config, "Model shape (smollm2-135m, tiny)");
  app.add_option("--dtype", dtype, "Base weight storage: f32 or bf16");
  app.add_option("--compute", compute, "Matmul precision: auto, f32 or bf16 (see compute_dtype)");
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--steps", steps, "Timed steps");
  app.add_option("--warmup", warmup, "Untimed steps first");
  app.add_option("--rank", rank);
  app.add_option("--cache", cache, "Folder for the generated model");
  app.add_flag("--gemm", gemm_only, "Only print the sustained GEMM GFLOP/s (f32 and bf16)");
  app.add_flag("--recompute", recompute, "Recompute activations per layer in backward (gradient checkpointing)");
  app.add_flag("--pack,!--no-pack", pack, "Pack the weights for the matmul kernels (as the trainer does)");
  app.add_flag("--profile", profile, "Time every op of forward + backward and print the breakdown");
  CLI11_PARSE(app, argc, argv);
  try {
    if (gemm_only) {
      std::printf("RESULT %s\n", nlohmann::json{{"gemm_gflops", gemm_gflops(false)},
                                                {"gemm_bf16_gflops", gemm_gflops(true)},
                                                {"native_bf16", cpu_native_bf16()}}
                                     .dump()
                                     .c_str());
      return 0;
    }
    const LlamaConfig c = shape(config);
    const DType dt = dtype == "bf16" ? DType::BF16 : DType::F32;
    const fs::path dir = fs::path(cache) / (config + "-" + dtype);
    if (!fs::exists(dir / "model.safetensors")) write_random_model(dir, c, 0, dt, 0.02f);
    const double rss_before = peak_rss_mib();
    Model m = load_model(dir);
    apply_base_options(m, {"none", "auto", compute});
    const size_t packed = pack ? pack_weights(m, batch * seq) : 0;
    LoraConfig lc;
    lc.r = rank;
    lc.alpha = alpha;
    lc.targets.fill(true);
    Rng rng(1);
    LoraWeights lw = make_lora(m.cfg, lc, rng);
    Activations a;
    make_activations(a, m.cfg, &lw, batch, seq, recompute, computes_bf16(m));
    std::mt19937 gen(2);
    std::vector<int32_t> tokens(size_t(batch * seq));
    for (auto& t : tokens) t = int32_t(gen() % uint32_t(c.vocab_size));
    MicroBatch mb{batch, seq, tokens.data(), nullptr, nullptr, nullptr};
    if (profile) {
      profile_steps(m, lw, a, mb, steps);
      return 0;
    }
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
    nlohmann::json res = {{"impl", "tpro"},        {"config", config},           {"dtype", dtype}, {"compute", m.lm_head.bf16_compute ? "bf16" : "f32"}, {"packed_mib", double(packed) / 1048576.0},
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
