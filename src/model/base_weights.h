// How the frozen base is held in memory, chosen after loading (QLoRA): `quantize` stores every
// plain-float projection (q, k, v, o, gate, up, down) as NF4 with double quantization (block
// 64, second level 256, as in the QLoRA paper) or a ggml block type; `dtype` stores the other
// plain-float matrices as f32/bf16/f16. `quantize` leaves the embedding, LM head and norms
// alone, as QLoRA (bitsandbytes, PEFT) does; `quantize_embedding` / `quantize_head` store those
// two as ggml blocks on request (llama.cpp's --token-embedding-type / --output-tensor-type).
// Already-quantized weights (a GGUF model) stay as they are. The forward and backward
// dequantize panels of rows inside the matmul (kernels/cpu/linear.h) and the embedding lookup
// dequantizes the rows it gathers; nothing here runs then.
#pragma once
#include <array>
#include <string>

#include "core/cancel.h"
#include "kernels/backend.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

// The frozen weight of projection p in a layer.
WeightMatrix& proj_weight(LayerWeights& L, Proj p);
const WeightMatrix& proj_weight(const LayerWeights& L, Proj p);

struct BaseWeightOptions {
  std::string quantize = "none";  // none, nf4, q8_0, q4_0, q4_k, q6_k
  std::string dtype = "auto";     // auto (as loaded), f32, bf16, f16
  // How the matrices are multiplied (WeightMatrix::bf16_compute): f32, bf16, or auto = bf16
  // for BF16 and quantized matrices when the device multiplies bf16 faster (Backend::prefers_bf16), else f32.
  std::string compute = "auto";
  const CancelFlag* cancel = nullptr;  // a stop request ends the conversion (Cancelled)
  // The token embedding and the LM head: none keeps them as loaded (or `dtype`); q8_0, q6_k,
  // q4_k, q4_0 store them as that ggml type. A tied model has one tensor: it takes the type
  // set (both set must agree). n_embd must fill whole blocks (an error otherwise).
  std::string quantize_embedding = "none";
  std::string quantize_head = "none";
};

// Replaces the model's matrices in place and sets how each is multiplied (new storage kept in m.owned; the pages of the file
// they came from are handed back to the OS as each one is done). Throws on an unknown option.
// A projection whose columns are not a multiple of the quantization block keeps its plain type
// (or `dtype`); the returned warning lists them ("" when there is none), for the caller to show.
// An embedding or head asked to be quantized that the file already holds quantized keeps its
// type, said in the returned note too.
std::string apply_base_options(Model& m, const BaseWeightOptions& o, const Backend& be);
// The model as apply_base_options(o) would hold it, for sizing (base_memory, planned_prepared_bytes):
// the matrices retyped and their compute type set, nothing converted; its matrices' data must
// not be read (they point at the loaded bytes of the old type). Throws on an unknown option.
Model planned_base(const Model& m, const BaseWeightOptions& o, const Backend& be);
// Only the multiplication precision (BaseWeightOptions::compute), for tools that keep the
// storage as loaded (perplexity, generation).
void set_compute(Model& m, const std::string& compute, const Backend& be);
// True when some matrix of the model multiplies in bf16 (activations then keep bf16 copies).
bool computes_bf16(const Model& m);

// The backend's own form of the projections and LM head (Backend::prepare_weight: on the CPU,
// blocked copies of the f32 matrices multiplied in f32, so no product repacks a weight per
// call), made once after the compute type is set; rows_hint = rows of a micro-batch. When a
// prepared form replaces the plain one, its pages are handed back to the OS (a mapped file
// pages them in again if a product ever needs them). Costs up to twice the prepared matrices'
// size, so it is skipped, returning 0, when that would exceed a quarter of the machine's
// memory. Returns the bytes prepared. set_compute() drops them.
size_t prepare_weights(Model& m, const Backend& be, int64_t rows_hint);
// The bytes prepare_weights(m, be, rows_hint) would prepare, by the same rule, without preparing.
size_t planned_prepared_bytes(const Model& m, const Backend& be, int64_t rows_hint);

// The name of the first base tensor ("model.layers.3.mlp.up_proj.weight", "model.norm.weight")
// holding a NaN or infinity, or "" when all are finite. Reads every weight (dequantizing
// quantized ones): a diagnosis after a non-finite loss, not a load-time check.
std::string first_non_finite_weight(const Model& m);

// Bytes of the base as held: 2-D weights by storage type (a tied head counted once, NF4 with
// its scales) plus the f32 vectors (norms, biases).
struct BaseMemory {
  std::array<size_t, kWTypeCount> matrices{};
  size_t vectors = 0;
  size_t total() const;
};
BaseMemory base_memory(const Model& m);
// "NF4 812.3 MiB, BF16 250.0 MiB, f32 vectors 264.0 KiB: 1062.6 MiB in all"
std::string describe_base_memory(const BaseMemory& b);
// How the vocabulary matrices are held: "token embedding Q8_0, LM head BF16", or
// "token embedding and LM head (tied, one tensor) Q6_K".
std::string describe_vocab_storage(const Model& m);
// True when the embedding or the LM head is held in a ggml block type (or NF4).
bool vocab_quantized(const Model& m);

}  // namespace tpro
