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

// --profile: a backend that forwards every op to the real one and times it (wall clock,
// summed over calls).
enum Op { kProj, kProjB, kNormF, kNormB, kRope, kRopeB, kAttF, kAttB, kSwiF, kSwiB, kAdd, kEmb, kRows, kCe, kMem, kOps };
const char* const kOpNames[kOps] = {"project fwd", "project bwd", "rmsnorm fwd", "rmsnorm bwd", "rope fwd",
                                    "rope bwd", "attention fwd", "attention bwd", "glu fwd", "glu bwd",
                                    "residual add", "embedding", "gather/scatter", "cross-entropy", "memory ops"};
double g_op_s[kOps];

struct OpTimer {
  Op op;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~OpTimer() { g_op_s[op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

#define TIMED(op, call) \
  OpTimer timer_{op};   \
  return in_.call
class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(const Backend& in) : in_(in) {}
  std::string_view name() const override { return in_.name(); }
  std::string describe() const override { return in_.describe() + " (timed)"; }
  bool prefers_bf16() const override { return in_.prefers_bf16(); }
  void* alloc(size_t n) const override { return in_.alloc(n); }
  void free(void* p) const override { in_.free(p); }
  void upload(void* d, const void* s, size_t n) const override { TIMED(kMem, upload(d, s, n)); }
  void download(void* d, const void* s, size_t n) const override { TIMED(kMem, download(d, s, n)); }
  void copy(void* d, const void* s, size_t n) const override { TIMED(kMem, copy(d, s, n)); }
  void fill(float* x, float v, int64_t n) const override { TIMED(kMem, fill(x, v, n)); }
  size_t allocated_bytes() const override { return in_.allocated_bytes(); }
  size_t workspace_bytes(const WorkspaceShape& s) const override { return in_.workspace_bytes(s); }
  std::shared_ptr<const PreparedWeight> prepare_weight(const WeightMatrix& W, int64_t r) const override {
    return in_.prepare_weight(W, r);
  }
  size_t prepared_bytes(const WeightMatrix& W, int64_t r) const override { return in_.prepared_bytes(W, r); }
  void project(float* o, const float* x, const WeightMatrix& W, const float* b, const LoraOperands* l,
               int64_t N) const override {
    TIMED(kProj, project(o, x, W, b, l, N));
  }
  void project_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W, const LoraOperands* l,
                        int64_t N, Accumulate acc) const override {
    TIMED(kProjB, project_backward(dx, dy, x, W, l, N, acc));
  }
  void dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s,
                        int64_t R) const override {
    TIMED(kProj, dora_weight_norm(wn, W, A, B, s, R));
  }
  void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float al, const float* A, int64_t lda, const float* B,
            int64_t ldb, float be, float* C, int64_t ldc) const override {
    in_.gemm(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  void rmsnorm_forward(float* o, float* r, const float* x, const float* w, float e, int64_t N,
                       int64_t D) const override {
    TIMED(kNormF, rmsnorm_forward(o, r, x, w, e, N, D));
  }
  void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, const float* r, int64_t N,
                        int64_t D) const override {
    TIMED(kNormB, rmsnorm_backward(dx, dy, x, w, r, N, D));
  }
  void rope_table(float* c, float* s, std::span<const float> f, int64_t n, float m) const override {
    in_.rope_table(c, s, f, n, m);
  }
  void copy_columns(float* d, int64_t ldd, const float* s, int64_t lds, int64_t N, int64_t w,
                    Accumulate a) const override {
    TIMED(kMem, copy_columns(d, ldd, s, lds, N, w, a));
  }
  void rope_forward(float* x, const int32_t* p, const RopeTable& t, int64_t N, int64_t H, int64_t Dh) const override {
    TIMED(kRope, rope_forward(x, p, t, N, H, Dh));
  }
  void rope_backward(float* x, const int32_t* p, const RopeTable& t, int64_t N, int64_t H, int64_t Dh) const override {
    TIMED(kRopeB, rope_backward(x, p, t, N, H, Dh));
  }
  void attention_forward(float* o, float* lse, const float* q, const float* k, const float* v, const int32_t* seg,
                         const AttnShape& s, int64_t kvs) const override {
    TIMED(kAttF, attention_forward(o, lse, q, k, v, seg, s, kvs));
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                          const float* v, const float* out, const float* lse, const int32_t* seg,
                          const AttnShape& s) const override {
    TIMED(kAttB, attention_backward(dq, dk, dv, dout, q, k, v, out, lse, seg, s));
  }
  void swiglu_forward(float* o, const float* g, const float* u, int64_t n) const override {
    TIMED(kSwiF, swiglu_forward(o, g, u, n));
  }
  void swiglu_backward(float* dg, float* du, const float* dy, const float* g, const float* u,
                       int64_t n) const override {
    TIMED(kSwiB, swiglu_backward(dg, du, dy, g, u, n));
  }
  void geglu_forward(float* o, const float* g, const float* u, int64_t n) const override {
    TIMED(kSwiF, geglu_forward(o, g, u, n));
  }
  void geglu_backward(float* dg, float* du, const float* dy, const float* g, const float* u,
                      int64_t n) const override {
    TIMED(kSwiB, geglu_backward(dg, du, dy, g, u, n));
  }
  void softcap(float* x, int64_t n, float cap) const override { TIMED(kCe, softcap(x, n, cap)); }
  void add(float* x, const float* y, int64_t n) const override { TIMED(kAdd, add(x, y, n)); }
  void neftune_noise(float* x, int64_t N, int64_t T, int64_t D, double a, uint64_t s) const override {
    TIMED(kAdd, neftune_noise(x, N, T, D, a, s));
  }
  void embedding_forward(float* o, const int32_t* t, const WeightMatrix& e, int64_t N) const override {
    TIMED(kEmb, embedding_forward(o, t, e, N));
  }
  void embedding_backward(float* dE, const float* dy, const int32_t* t, int64_t N, int64_t D) const override {
    TIMED(kEmb, embedding_backward(dE, dy, t, N, D));
  }
  void gather_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t D) const override {
    TIMED(kRows, gather_rows(d, s, r, n, D));
  }
  void scatter_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t D) const override {
    TIMED(kRows, scatter_rows(d, s, r, n, D));
  }
  double cross_entropy(float* l, const int32_t* t, const float* w, int64_t n, int64_t V, float* nll, Gradient g,
                       float cap) const override {
    TIMED(kCe, cross_entropy(l, t, w, n, V, nll, g, cap));
  }
  void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h,
             int64_t step) const override {
    in_.adamw(p, g, m, v, n, h, step);
  }
  void sgd(float* p, const float* g, float* b, int64_t n, const SgdHyper& h, int64_t step) const override {
    in_.sgd(p, g, b, n, h, step);
  }
  void adagrad(float* p, const float* g, float* s, int64_t n, const AdagradHyper& h, int64_t step) const override {
    in_.adagrad(p, g, s, n, h, step);
  }
  void adafactor(float* p, const float* g, float* r, float* c, std::span<const OptimTensor> t,
                 const AdafactorHyper& h, int64_t step) const override {
    in_.adafactor(p, g, r, c, t, h, step);
  }
  void lion(float* p, const float* g, float* m, int64_t n, const LionHyper& h) const override {
    in_.lion(p, g, m, n, h);
  }
  void adamw8bit(float* p, const float* g, uint8_t* q1, uint8_t* q2, float* a1, float* a2,
                 std::span<const OptimTensor> t, const AdamWHyper& h, int64_t step) const override {
    in_.adamw8bit(p, g, q1, q2, a1, a2, t, h, step);
  }
  double l2_norm(const float* x, int64_t n) const override { return in_.l2_norm(x, n); }
  void scale(float* x, int64_t n, float s) const override { in_.scale(x, n, s); }

 private:
  const Backend& in_;
};
#undef TIMED

// Forward + backward of one micro-batch per step through the timed backend; prints each op's
// share of the step time (the optimizer update and the step's glue are the remainder).
void profile_steps(const Backend& cpu, const Model& m, LoraWeights& lw, const BatchView& mb, int64_t steps,
                   bool recompute) {
  const TimedBackend be(cpu);
  Activations a;
  make_activations(a, be, m.cfg, &lw, mb.B, mb.T, {.recompute = recompute});
  LoraState st(be, lw);
  double total = 0;
  for (int64_t s = 0; s <= steps; ++s) {
    if (s == 1) std::fill(g_op_s, g_op_s + kOps, 0.0), total = 0;  // step 0 warms up
    auto t0 = std::chrono::steady_clock::now();
    be.fill(st.grads(), 0.0f, st.n_params());
    StepOptions opt;
    opt.loss_norm = double(count_trained(mb));
    forward(m, &st, a, mb, opt);
    backward(m, st, a, mb, opt);
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
    const std::unique_ptr<Backend> be = make_backend("cpu");
    apply_base_options(m, {"none", "auto", compute}, *be);
    const size_t packed = pack ? prepare_weights(m, *be, batch * seq) : 0;
    LoraConfig lc;
    lc.r = rank;
    lc.alpha = alpha;
    lc.targets.fill(true);
    Rng rng(1);
    LoraWeights lw = make_lora(m.cfg, lc, rng);
    Activations a;
    if (!profile) make_activations(a, *be, m.cfg, &lw, batch, seq, {.recompute = recompute});
    LoraState state(*be, lw);
    std::mt19937 gen(2);
    std::vector<int32_t> tokens(size_t(batch * seq));
    for (auto& t : tokens) t = int32_t(gen() % uint32_t(c.vocab_size));
    const BatchView mb{batch, seq, tokens.data(), nullptr, nullptr, nullptr};
    if (profile) {
      profile_steps(*be, m, lw, mb, steps, recompute);
      return 0;
    }
    OptimConfig oc;
    std::vector<double> times;
    double loss = 0;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      loss = optimizer_step(m, state, a, {&mb, 1}, 2e-4, s + 1, uint64_t(s), oc).loss;
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
                          {"recompute", recompute},   {"activation_mib", double(a.mem.size()) / 1048576.0}};
    std::printf("tpro %s %s B%lld x T%lld: %.1f tok/s (median step %.3f s), peak RSS %.0f MiB\n", config.c_str(),
                dtype.c_str(), static_cast<long long>(batch), static_cast<long long>(seq), tok_s, med, peak_rss_mib());
    std::printf("RESULT %s\n", res.dump().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "tpro-bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
