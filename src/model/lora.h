// LoRA adapters on any subset of the seven projections: all parameters, gradients and AdamW
// moments in flat f32 buffers (one allocation each), so the optimizer, gradient norm,
// checkpoints and data-parallel all-reduce see one contiguous vector. PEFT init: A Kaiming-
// uniform(a=√5) i.e. U(±1/√in), B zero. Scale s = α/r, or α/√r with rsLoRA.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/backend.h"
#include "model/model.h"

namespace tpro {

enum class Proj : int { Q = 0, K, V, O, Gate, Up, Down };
constexpr int kNumProj = 7;
const char* proj_name(Proj p);       // "q_proj", ...
const char* proj_module(Proj p);     // "self_attn.q_proj", "mlp.gate_proj", ...
bool proj_from_name(const std::string& s, Proj* out);  // accepts "q_proj" or "q"

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool rslora = false;
  std::array<bool, kNumProj> targets{};  // which projections carry an adapter
  double scale() const;
  std::vector<std::string> target_names() const;
};

// Parses "q,v", "q_proj,v_proj" or a Training PRO preset (q-v, q-k-v, q-k-v-o, k-v-down, all).
std::array<bool, kNumProj> parse_targets(const std::string& spec);

struct LoraSlot {
  int64_t layer = 0;
  Proj proj = Proj::Q;
  int64_t in = 0, out = 0;
  size_t a = 0, b = 0;  // offsets of A (r, in) and B (out, r) in the flat buffers
};

struct LoraWeights {
  LoraConfig cfg;
  std::vector<LoraSlot> slots;
  std::vector<int> slot_of;     // (n_layer * 7) -> slot index or -1
  std::vector<float> params;    // all A and B
  std::vector<float> grads;     // same layout
  std::vector<float> m, v;      // AdamW moments

  const LoraSlot* find(int64_t layer, Proj p) const {
    int i = slot_of[size_t(layer * kNumProj + int(p))];
    return i < 0 ? nullptr : &slots[size_t(i)];
  }
  int64_t n_params() const { return int64_t(params.size()); }
};

// The trainable state of a LoraWeights layout in a backend's memory: parameters, gradients and
// AdamW moments, one device allocation, what forward, backward and the optimizer read and
// write. LoraWeights stays the host image that files, merging and checks use; download()
// brings the state back (saves, checkpoints), upload() sends it (resume, continued adapters).
class LoraState {
 public:
  LoraState(const Backend& be, const LoraWeights& host);
  const Backend& backend() const { return *be_; }
  const LoraConfig& cfg() const { return layout_.cfg; }
  const LoraWeights& layout() const { return layout_; }  // slots only: its vectors are empty
  const LoraSlot* find(int64_t layer, Proj p) const { return layout_.find(layer, p); }
  int64_t n_params() const { return n_; }
  float* params() const { return buf_.data(); }
  float* grads() const { return buf_.data() + n_; }
  float* m() const { return buf_.data() + 2 * n_; }
  float* v() const { return buf_.data() + 3 * n_; }
  void upload(const LoraWeights& host);          // params, grads, m, v
  void download(LoraWeights& host) const;        // params, grads, m, v
  std::vector<float> download_params() const;

 private:
  const Backend* be_;
  LoraWeights layout_;
  int64_t n_ = 0;
  DeviceArray<float> buf_;  // params | grads | m | v
};

// Lays out slots for the model's shapes and initialises as PEFT does (A uniform, B zero).
LoraWeights make_lora(const LlamaConfig& mc, const LoraConfig& lc, Rng& rng);
// The parameters make_lora lays out (A and B of every target in every layer), without allocating.
int64_t lora_param_count(const LlamaConfig& mc, const LoraConfig& lc);
void zero_grads(LoraWeights& lw);

}  // namespace tpro
