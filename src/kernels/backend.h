// The device-neutral engine: a Backend owns device memory (host memory for the CPU) and every
// op that forward, backward, the optimizer and generation run. Model and trainer code hold
// only device pointers it handed out and call its ops; they never branch on the device and
// never include kernels/<device>/. One instance per device, chosen once by name (make_backend).
// What a new backend must provide and how it is tested: docs/ENGINE.md.
// Legend: N rows, D/I/O widths, R LoRA rank, V vocabulary, H/Hkv heads, Dh head dim.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/qmatrix.h"

namespace tpro {

// Whether an op adds into its output or overwrites it.
enum class Accumulate : bool { no = false, yes = true };
// Whether a fused loss op also leaves its gradient.
enum class Gradient : bool { no = false, yes = true };

// Causal grouped-query attention over (B, Tq) queries and (B, Tk) keys: Tk − Tq earlier keys
// are a cache (generation); training has Tq == Tk. Query head h reads kv head h/(H/Hkv).
struct AttnShape {
  int64_t B = 1, Tq = 1, Tk = 1;
  int64_t H = 1, Hkv = 1, Dh = 1;
  int64_t window = 0;  // sliding window (Mistral, Gemma's local layers): keys a−window < j ≤ a; 0 = unlimited
  bool bf16 = false;   // products in bf16 with f32 sums (the projections compute in bf16)
  float scale = 0.0f;    // scores = scale·q·k; 0 = 1/√Dh
  float softcap = 0.0f;  // Gemma 2: scores -> softcap·tanh(scores/softcap) before the softmax; 0 = none
  float score_scale() const { return scale > 0.0f ? scale : 1.0f / std::sqrt(float(Dh)); }
};

// LoRA dropout on the adapter's input (as PEFT): element idx is zeroed with probability p,
// else scaled by 1/(1−p); regenerated from (seed, idx), never stored.
struct LoraDropout {
  float p = 0.0f;
  uint64_t seed = 0;  // distinct per (step, micro-batch, layer, target)
};

// The adapter of one projection: out += s·dropout(x)·Aᵀ·Bᵀ. Device pointers.
// With mag (DoRA, Liu et al. 2024, as PEFT's DoraLinearLayer) the projection becomes
//   out = x·Wᵀ + bias + (g − 1) ⊙ (xd·Wᵀ) + g ⊙ s·xd·Aᵀ·Bᵀ,  g = mag / ‖W + s·B·A‖_row
// with xd = dropout(x); without dropout that is g ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + bias. The row norm
// is a constant to the gradient (detached, DoRA §4.3): A and B get theirs through g ⊙ dy only.
struct LoraOperands {
  const float* A = nullptr;  // (R, I)
  const float* B = nullptr;  // (O, R)
  float scale = 1.0f;
  int64_t R = 0;
  LoraDropout dropout;
  float* u = nullptr;   // (N, R) dropout(x)·Aᵀ: written by forward, read by backward
  float* dA = nullptr;  // (R, I) += in backward
  float* dB = nullptr;  // (O, R) += in backward
  const float* mag = nullptr;  // (O) DoRA magnitude; null = plain LoRA
  float* dmag = nullptr;       // (O) += in backward
  float* wnorm = nullptr;      // (O) ‖W + s·B·A‖ per row: project() writes it when wnorm_stale, backward reads it
  bool wnorm_stale = true;     // A or B changed since wnorm was written
};

// cos/sin of pos·inv_freq[j], pos in [0, n_pos), j in [0, half): device memory, (n_pos, half).
struct RopeTable {
  const float* cos = nullptr;
  const float* sin = nullptr;
  int64_t half = 0, n_pos = 0;
};

// torch.optim.AdamW's hyper-parameters (decoupled weight decay, bias correction); also
// bitsandbytes' 8-bit AdamW's.
struct AdamWHyper {
  double lr = 2e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};
// torch.optim.SGD: L2 weight decay added to the gradient, momentum buffer set to the first
// step's gradient, then buf = momentum·buf + (1 − dampening)·g; nesterov steps by g + momentum·buf.
struct SgdHyper {
  double lr = 2e-4, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};
// torch.optim.Adagrad: L2 weight decay, sum += g², step lr/(1 + (step−1)·lr_decay) · g/(√sum + eps).
struct AdagradHyper {
  double lr = 2e-4, lr_decay = 0.0, eps = 1e-10, weight_decay = 0.0;
};
// transformers' Adafactor as Trainer makes it for "adafactor" (scale_parameter, relative_step and
// warmup_init off, beta1 None): β2ₜ = 1 − step^decay_rate, second moments of g² + eps1 factored
// into row and column means for matrices, the update's RMS clipped to clip_threshold, decoupled
// weight decay p −= lr·wd·p. (eps2 only serves scale_parameter, which Trainer turns off.)
struct AdafactorHyper {
  double lr = 2e-4, eps1 = 1e-30, clip_threshold = 1.0, decay_rate = -0.8, weight_decay = 0.0;
};
// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): p −= lr·sign(β1·m +
// (1−β1)·g), then m = β2·m + (1−β2)·g; decoupled weight decay p *= 1 − lr·wd first.
struct LionHyper {
  double lr = 2e-4, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.0;
};

// Block size of the 8-bit optimizer states (bitsandbytes' blockwise 2-state kernels): one absmax
// per 256 elements of each tensor, the last block of a tensor possibly short.
inline constexpr int64_t kOptim8bitBlock = 256;

// One trainable tensor of the flat LoRA buffers, for the optimizers that work per tensor
// (Adafactor's factored moments and update clipping, 8-bit blocks). Offsets count elements.
struct OptimTensor {
  int64_t offset = 0;          // first element in params/grads: rows·cols elements, row-major
  int64_t rows = 1, cols = 1;  // a (rows, cols) matrix, or a vector of cols when !matrix
  bool matrix = true;          // Adafactor factors matrices (any 2-D tensor, as torch: even 1 row)
  int64_t row_at = 0;          // Adafactor: its row factor (rows) in the row buffer; a vector's
                               // full second moment (cols) in the same buffer
  int64_t col_at = 0;          // Adafactor: its column factor (cols) in the column buffer
  int64_t block_at = 0;        // 8-bit: its first block in the absmax buffers
  bool lr_group_b = false;     // LoRA+ group B (a B matrix or a 1-D vector): stepped at lr·loraplus_lr_ratio
  int64_t numel() const { return rows * cols; }
  int64_t blocks() const { return (numel() + kOptim8bitBlock - 1) / kOptim8bitBlock; }
};

// A backend's own form of a frozen weight (blocked copies for the CPU's matmul kernels, a
// resident copy on a GPU), made by Backend::prepare_weight and owned by the model.
struct PreparedWeight {
  virtual ~PreparedWeight() = default;
  virtual size_t bytes() const = 0;
  // True when the backend's products never read the plain data again (it may be paged out).
  virtual bool replaces_data() const = 0;
};

// The shape of a training step, for Backend::workspace_bytes: what the per-call scratch of
// the ops depends on. W = the widest projection side (max of D, F, H·Dh).
struct WorkspaceShape {
  int64_t N = 0, B = 0, T = 0;  // rows of a micro-batch: N = B·T
  int64_t W = 0, R = 0;         // widest projection side, LoRA rank (0: no adapter)
  int64_t V = 0, C = 0;         // vocabulary, rows of one logit chunk
  int64_t H = 0, Hkv = 0, Dh = 0;
  bool bf16 = false;     // some projection multiplies in bf16 (WeightMatrix::bf16_compute)
  bool panels = false;   // some projection is expanded panel by panel (quantized, or not in its compute type)
  bool dropout = false;  // LoRA dropout is on
  bool dora = false;     // some adapter is DoRA (scaled output gradients, recomputed base products)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // One line for logs: the device and what its kernels use ("cpu: 2 threads, AVX-512, bf16 native").
  virtual std::string describe() const = 0;
  // True when bf16 products with f32 sums are faster here than f32 ones (compute "auto").
  virtual bool prefers_bf16() const = 0;

  // ---- memory: device buffers, zero-filled and 64-byte aligned; alloc throws tpro::Error
  virtual void* alloc(size_t bytes) const = 0;
  virtual void free(void* p) const = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) const = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) const = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) const = 0;
  virtual void fill(float* x, float value, int64_t n) const = 0;
  // Bytes held now by alloc (live allocations, as rounded up): what a memory plan is checked against.
  virtual size_t allocated_bytes() const = 0;
  // Bytes of the per-call scratch the ops keep for a step of shape s (thread scratch on the
  // CPU): an upper estimate, for the memory plan; not allocated through alloc.
  virtual size_t workspace_bytes(const WorkspaceShape& s) const = 0;

  // ---- frozen weights
  // The backend's form of W for products of about rows_hint rows, or null when W is used as
  // it is. The caller keeps the result alive while W.prepared points at it.
  virtual std::shared_ptr<const PreparedWeight> prepare_weight(const WeightMatrix& W, int64_t rows_hint) const = 0;
  // The bytes prepare_weight(W, rows_hint) would hold, without preparing (W.data is not read).
  virtual size_t prepared_bytes(const WeightMatrix& W, int64_t rows_hint) const = 0;

  // ---- projections: out (N,O) = x (N,I)·Wᵀ + bias (O) [+ LoRA]; W.bf16_compute runs the
  // products (the adapter's too) in bf16 with f32 sums, as torch.autocast runs PEFT.
  virtual void project(float* out, const float* x, const WeightMatrix& W, const float* bias,
                       const LoraOperands* lora, int64_t N) const = 0;
  // dx (N,I) = or += dy (N,O)·W [+ the adapter's path]; lora->dA, dB +=. x is the forward input.
  virtual void project_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W,
                                const LoraOperands* lora, int64_t N, Accumulate acc) const = 0;
  // wn (O) = ‖W + s·B·A‖ over each row (I columns), W of any type expanded to f32, sums in
  // double: DoRA's weight norm. A (R,I), B (O,R) device pointers.
  virtual void dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s,
                                int64_t R) const = 0;
  // C (M,N) = alpha·op(A)·op(B) + beta·C, f32, row-major (merging adapters).
  virtual void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) const = 0;

  // ---- per-row and elementwise ops of the block
  virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t N,
                               int64_t D) const = 0;
  // dx (N,D) += (the residual stream's gradient accumulates).
  virtual void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, const float* rstd,
                                int64_t N, int64_t D) const = 0;
  // Fills a table (cos, sin: (n_pos, half) device buffers) from host inv_freq (half): angles in
  // double, both multiplied by mscale (LongRoPE's and YaRN's attention factor; 1 otherwise).
  virtual void rope_table(float* cos, float* sin, std::span<const float> inv_freq, int64_t n_pos,
                          float mscale) const = 0;
  // x (N, H, Dh) rotated in place by position pos[n] (HF rotate_half layout) over the first
  // 2·t.half dimensions of each head; the rest pass through (partial rotary, Phi).
  virtual void rope_forward(float* x, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                            int64_t Dh) const = 0;
  // dx (N, H, Dh) in place: the gradient through rope_forward (the inverse rotation).
  virtual void rope_backward(float* dx, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                             int64_t Dh) const = 0;
  // out (B,Tq,H,Dh); lse (B,H,Tq) or null; q (B,Tq,H,Dh); k, v (B,Tk,Hkv,Dh) with kv_stride
  // elements between key positions (0: Hkv·Dh); seg_start (B,Tq) or null: first key each query sees.
  virtual void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                 const int32_t* seg_start, const AttnShape& s, int64_t kv_stride) const = 0;
  // dq =, dk =, dv = (training shape, Tq == Tk).
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                  const float* k, const float* v, const float* out, const float* lse,
                                  const int32_t* seg_start, const AttnShape& s) const = 0;
  // out (n) = silu(gate)·up; backward writes dgate, dup (=).
  virtual void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) const = 0;
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                               int64_t n) const = 0;
  // GeGLU (Gemma): out (n) = gelu_tanh(gate)·up, gelu's tanh approximation as torch's
  // gelu(approximate="tanh"); backward writes dgate, dup (=).
  virtual void geglu_forward(float* out, const float* gate, const float* up, int64_t n) const = 0;
  virtual void geglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                              int64_t n) const = 0;
  // x (n) = cap·tanh(x/cap) in place (Gemma 2's final logits, outside the loss: generation).
  virtual void softcap(float* x, int64_t n, float cap) const = 0;
  // dst row n [0, width) = (or +=) src row n [0, width), rows of ldd / lds floats: the column
  // blocks of a fused projection (Phi-3's qkv_proj, gate_up_proj) split out and put back.
  virtual void copy_columns(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t N, int64_t width,
                            Accumulate acc) const = 0;
  // x (n) += y (n): the residual connections.
  virtual void add(float* x, const float* y, int64_t n) const = 0;
  // NEFTune (Jain et al. 2023): x (N = rows of T tokens, D) += uniform noise of magnitude α/√(T·D).
  virtual void neftune_noise(float* x, int64_t N, int64_t T, int64_t D, double alpha, uint64_t seed) const = 0;

  // ---- embeddings and the LM head
  // out (N,D) = rows tokens[n] of the (V,D) embedding (any WType); ids must be < V.
  virtual void embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N) const = 0;
  // dE (V,D) f32 += dout rows scattered to their tokens (training the embedding).
  virtual void embedding_backward(float* dE, const float* dout, const int32_t* tokens, int64_t N,
                                  int64_t D) const = 0;
  // dst row i = src row rows[i]; scatter: dst row rows[i] = src row i. (n rows of D.)
  virtual void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const = 0;
  virtual void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const = 0;
  // Masked softmax cross-entropy on n rows of logits (n,V), fused with its backward: with
  // Gradient::yes the logits become weight·(softmax − onehot). targets (n), −1 = untrained;
  // nll (n) receives −log p(target). Returns Σ weight·nll. softcap > 0: the loss is taken on
  // softcap·tanh(logits/softcap) and the gradient is the raw logits' (through the tanh).
  virtual double cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V,
                               float* nll, Gradient grad, float softcap) const = 0;

  // ---- optimizer on the flat LoRA buffers
  // One AdamW update at 1-based `step` (bias correction), as torch.optim.AdamW.
  virtual void adamw(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h,
                     int64_t step) const = 0;
  // torch.optim.SGD; buf (n) is the momentum buffer (untouched when momentum is 0; step 1 sets it).
  virtual void sgd(float* params, const float* grads, float* buf, int64_t n, const SgdHyper& h,
                   int64_t step) const = 0;
  // torch.optim.Adagrad; sum (n) starts at initial_accumulator_value (0).
  virtual void adagrad(float* params, const float* grads, float* sum, int64_t n, const AdagradHyper& h,
                       int64_t step) const = 0;
  // transformers' Adafactor on each tensor: row (Σ rows, plus vectors' cols), col (Σ cols) f32.
  virtual void adafactor(float* params, const float* grads, float* row, float* col,
                         std::span<const OptimTensor> tensors, const AdafactorHyper& h, int64_t step) const = 0;
  // Lion with one f32 moment m (n).
  virtual void lion(float* params, const float* grads, float* m, int64_t n, const LionHyper& h) const = 0;
  // bitsandbytes' blockwise 8-bit AdamW: q1, q2 (n) codes of the signed / unsigned dynamic maps
  // (quant/dynamic_map.h), absmax1, absmax2 (Σ blocks) their per-block scales; all zero at start.
  virtual void adamw8bit(float* params, const float* grads, uint8_t* q1, uint8_t* q2, float* absmax1,
                         float* absmax2, std::span<const OptimTensor> tensors, const AdamWHyper& h,
                         int64_t step) const = 0;
  virtual double l2_norm(const float* x, int64_t n) const = 0;  // summed in double
  virtual void scale(float* x, int64_t n, float s) const = 0;
};

// The backend for `device` ("cpu"); an unknown or not compiled-in device is an error naming
// the ones this build has.
std::unique_ptr<Backend> make_backend(std::string_view device);
// The devices compiled into this build, e.g. {"cpu"}.
std::vector<std::string> compiled_backends();

// An owned device allocation of n elements of T (moves, never copies).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const Backend& be, size_t n) : be_(&be), n_(n), p_(n ? static_cast<T*>(be.alloc(n * sizeof(T))) : nullptr) {}
  DeviceArray(DeviceArray&& o) noexcept : be_(o.be_), n_(o.n_), p_(o.p_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      be_ = o.be_, n_ = o.n_, p_ = o.p_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }

  T* data() const { return p_; }
  size_t size() const { return n_; }
  void upload(std::span<const T> host, size_t offset = 0) const {
    if (!host.empty()) be_->upload(p_ + offset, host.data(), host.size_bytes());
  }
  void download(std::span<T> host, size_t offset = 0) const {
    if (!host.empty()) be_->download(host.data(), p_ + offset, host.size_bytes());
  }

 private:
  void release() {
    if (p_) be_->free(p_);
    p_ = nullptr;
  }
  const Backend* be_ = nullptr;
  size_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace tpro
