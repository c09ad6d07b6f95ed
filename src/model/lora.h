// LoRA adapters on any subset of the seven projections: all parameters and gradients in flat
// f32 buffers, and the state of the chosen optimizer (AdamW moments, Adafactor factors, 8-bit
// codes...) beside them, so the optimizer, gradient norm, checkpoints and data-parallel
// all-reduce see one contiguous vector. PEFT init: A Kaiming-
// uniform(a=√5) i.e. U(±1/√in), B zero. Scale s = α/r, or α/√r with rsLoRA. DoRA (use_dora)
// adds a trained magnitude vector per adapted projection, initialised to ‖W‖ per row.
#pragma once
#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "kernels/backend.h"
#include "model/model.h"

namespace tpro {

// The seven projections of a Llama block, then Phi-3's fused ones (qkv_proj = q|k|v rows,
// gate_up_proj = gate|up rows), which replace Q, K, V and Gate, Up in such models.
enum class Proj : int { Q = 0, K, V, O, Gate, Up, Down, QKV, GateUp };
constexpr int kNumProj = 9;
const char* proj_name(Proj p);       // "q_proj", ...
const char* proj_module(Proj p);     // "self_attn.q_proj", "mlp.gate_proj", ...
bool proj_from_name(const std::string& s, Proj* out);  // accepts "q_proj" or "q"

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool rslora = false;
  bool dora = false;  // DoRA: a magnitude vector (out) per adapter, PEFT's use_dora
  std::array<bool, kNumProj> targets{};  // which projections carry an adapter
  std::string hf_prefix = "model.";      // where the base's layers live (PEFT's keys follow it)
  // PEFT's modules_to_save (Training PRO's "Train Head", lora_modulessave): full trained copies
  // of the token embedding and the LM head, (V, D) each, initialised from the base's. On a
  // tied model they are two copies that drift apart, as PEFT keeps them by default
  // (ensure_weight_tying off); the adapter's model is then untied.
  bool save_embed = false;  // "embed_tokens"
  bool save_head = false;   // "lm_head"
  double scale() const;
  std::vector<std::string> target_names() const;
};

// Parses "q,v", "q_proj,v_proj" or a Training PRO preset (q-v, q-k-v, q-k-v-o, k-v-down, all).
std::array<bool, kNumProj> parse_targets(const std::string& spec);
// The targets as the model has them: on a fused model (Phi-3) any of q/k/v is qkv_proj and any
// of gate/up is gate_up_proj, as PEFT can only adapt the whole fused layer (`note` says so when
// that widened the choice); a fused name on an unfused model is an error.
std::array<bool, kNumProj> model_targets(const LlamaConfig& mc, const std::array<bool, kNumProj>& t,
                                         std::string* note = nullptr);

struct LoraSlot {
  int64_t layer = 0;
  Proj proj = Proj::Q;
  int64_t in = 0, out = 0;
  size_t a = 0, b = 0;  // offsets of A (r, in) and B (out, r) in the flat buffers
  size_t m = 0;         // offset of the DoRA magnitude (out) when cfg.dora (after B)
};

// The optimizers the trainer runs; train/params.cpp maps Training PRO's names onto them.
enum class OptimKind { adamw, sgd, adagrad, adafactor, lion, adamw8bit };
const char* optim_kind_name(OptimKind k);  // "adamw", "sgd", ... (as checkpoints record it)

// One optimizer state tensor, as optimizer.safetensors stores it under `name`.
struct OptimBuffer {
  std::string name;            // "adamw.exp_avg"
  bool u8 = false;             // 8-bit codes, else f32 values
  int64_t count = 0;           // elements
  std::vector<float> f32;      // host image: count values when !u8
  std::vector<uint8_t> codes;  // host image: count codes when u8
};

struct LoraWeights {
  LoraConfig cfg;
  std::vector<LoraSlot> slots;
  std::vector<int> slot_of;     // (n_layer * 7) -> slot index or -1
  std::vector<float> params;    // all A and B (and DoRA magnitudes), slot by slot, then the saved modules' copies
  std::vector<float> grads;     // same layout
  // Offsets of the trained copies (V, D) after the LoRA matrices (cfg.save_embed/save_head), or -1.
  int64_t embed_at = -1, head_at = -1;
  int64_t vocab = 0, n_embd = 0;  // their shape (V, D)
  OptimKind optim = OptimKind::adamw;
  std::vector<OptimBuffer> state;  // optim's state (optimizer_buffers), zero at the start

  OptimBuffer& state_named(std::string_view name);  // TPRO_CHECKs that it exists

  const LoraSlot* find(int64_t layer, Proj p) const {
    int i = slot_of[size_t(layer * kNumProj + int(p))];
    return i < 0 ? nullptr : &slots[size_t(i)];
  }
  int64_t n_params() const { return int64_t(params.size()); }
};

// The names of cfg's saved modules, as adapter_config.json's modules_to_save lists them.
std::vector<std::string> saved_module_names(const LoraConfig& c);  // {"embed_tokens", "lm_head"}
// Fills lw's saved-module copies from the base's embedding and head (dequantized to f32).
void init_saved_modules(LoraWeights& lw, const Model& base);

// The A and B matrices (and DoRA magnitude vectors) of the layout in flat-buffer order, with
// each one's Adafactor factor offsets and 8-bit block offset (rows of A: r, of B: out; a
// vector's unfactored second moment takes its length in the row buffer).
std::vector<OptimTensor> optim_tensors(const LoraWeights& lw);
// The state `kind` keeps for lw's layout, zero-filled: AdamW exp_avg and exp_avg_sq; SGD
// momentum_buffer; Adagrad sum; Adafactor exp_avg_sq_row and exp_avg_sq_col; Lion exp_avg;
// 8-bit AdamW state1 and state2 codes with absmax1 and absmax2 per 256-block.
std::vector<OptimBuffer> optimizer_buffers(const LoraWeights& lw, OptimKind kind);
// Switches lw to `kind` with fresh (zero) state.
void set_optimizer(LoraWeights& lw, OptimKind kind);

// The trainable state of a LoraWeights layout in a backend's memory: parameters, gradients and
// the optimizer's state, one device allocation, what forward, backward and the optimizer read
// and write. LoraWeights stays the host image that files, merging and checks use; download()
// brings the state back (saves, checkpoints), upload() sends it (resume, continued adapters).
class LoraState {
 public:
  LoraState(const Backend& be, const LoraWeights& host);
  const Backend& backend() const { return *be_; }
  const LoraConfig& cfg() const { return layout_.cfg; }
  const LoraWeights& layout() const { return layout_; }  // slots only: its vectors are empty
  const LoraSlot* find(int64_t layer, Proj p) const { return layout_.find(layer, p); }
  // The trained copies (V, D) of the embedding and LM head and their gradients; null when the
  // adapter does not train them.
  float* embed() const { return layout_.embed_at < 0 ? nullptr : params() + layout_.embed_at; }
  float* dembed() const { return layout_.embed_at < 0 ? nullptr : grads() + layout_.embed_at; }
  float* head() const { return layout_.head_at < 0 ? nullptr : params() + layout_.head_at; }
  float* dhead() const { return layout_.head_at < 0 ? nullptr : grads() + layout_.head_at; }
  int64_t n_params() const { return n_; }
  float* params() const { return buf_.data(); }
  float* grads() const { return buf_.data() + n_; }
  OptimKind optim() const { return layout_.optim; }
  std::span<const OptimTensor> tensors() const { return tensors_; }
  size_t n_state() const { return state_at_.size(); }
  // State buffer i of optimizer_buffers(layout, optim()) on the device.
  float* state_f32(size_t i) const { return buf_.data() + state_at_[i]; }
  uint8_t* state_u8(size_t i) const { return reinterpret_cast<uint8_t*>(buf_.data() + state_at_[i]); }
  void upload(const LoraWeights& host);          // params, grads, optimizer state (each when non-empty)
  void download(LoraWeights& host) const;        // params, grads, optimizer state
  std::vector<float> download_params() const;
  // DoRA: slot s's weight-norm buffer (out floats, ‖W + s·B·A‖ per row), and in *stale whether
  // it must be computed again (its first use since the parameters changed); the buffer counts
  // as fresh from then on. Forward computes it, backward reads it.
  float* dora_norm(const LoraSlot& s, bool* stale) const;
  // To call after anything wrote params() (the optimizer step; upload does it): DoRA's norms
  // are recomputed at their next use.
  void params_changed() const;

 private:
  const Backend* be_;
  LoraWeights layout_;  // slots and the state's names and sizes; no values
  int64_t n_ = 0;
  std::vector<OptimTensor> tensors_;
  std::vector<int64_t> state_at_;  // float offset of each state buffer (64-byte aligned)
  std::vector<int64_t> norm_at_;   // DoRA: float offset of each slot's weight norms
  mutable std::vector<uint8_t> norm_fresh_;  // DoRA: per slot, its norms match the parameters
  DeviceArray<float> buf_;         // params | grads | state buffers | DoRA norms
};

// Lays out slots for the model's shapes and initialises as PEFT does (A uniform, B zero); the
// targets become model_targets (the layout's cfg holds those); DoRA magnitudes are zero until
// init_dora_magnitudes.
LoraWeights make_lora(const LlamaConfig& mc, const LoraConfig& lc, Rng& rng);
// DoRA: every magnitude = ‖W + s·B·A‖ per row of its base weight (PEFT's DoraLinearLayer
// update_layer; ‖W‖ while B is zero). The product runs on be. No-op without cfg.dora.
void init_dora_magnitudes(const Backend& be, const Model& m, LoraWeights& lw);
// The parameters make_lora lays out (A, B and DoRA magnitudes of every target in every layer), without allocating.
// The parameters make_lora lays out (A and B of every target in every layer, V·D per saved
// module), without allocating.
int64_t lora_param_count(const LlamaConfig& mc, const LoraConfig& lc);
void zero_grads(LoraWeights& lw);

}  // namespace tpro
