// The memory plan of a training run, made before anything large is allocated: the base weights
// as held (and the backend's prepared copies), the LoRA state, the activations of the longest
// micro-batch actually batched, and the backend's scratch; checked against the memory
// available. Each part comes from the sizing code its allocation uses (activation_bytes,
// base_memory, planned_prepared_bytes, lora_param_count, Backend::workspace_bytes), so the plan
// cannot drift from what is allocated. Not here: the allocations themselves (trainer.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

struct MemoryPlan {
  size_t weights = 0;      // the base as held (base_memory) + prepared copies - embed_unread
  size_t embed_unread = 0;  // of a memory-mapped embedding that is not the LM head: the pages the
                            // run's tokens never fault in (they never become resident)
  size_t prepared = 0;     // of which the backend's prepared copies (prepare_weights)
  size_t adapter = 0;      // LoRA parameters, gradients, AdamW moments: backend state + host image
  size_t activations = 0;  // activation_bytes(B, T), RoPE table included
  size_t workspace = 0;    // the ops' scratch (Backend::workspace_bytes)
  size_t available = 0;    // what the plan is checked against; 0 = unknown (not checked)
  int64_t B = 0, T = 0;    // micro-batch rows and the longest row batched
  bool recompute = false;  // activations recomputed per layer (gradient checkpointing)
  bool packed = false;     // weights prepared for the matmul kernels
  // How the embedding and LM head are held when either is quantized (describe_vocab_storage:
  // "token embedding and LM head (tied, one tensor) Q8_0"), else "".
  std::string vocab;
  size_t total() const { return weights + adapter + activations + workspace; }
  bool fits() const { return available == 0 || total() <= available; }
};

// The plan for micro-batches of B rows of up to T tokens. `held` is the base as it will be held
// (the loaded model after apply_base_options, or planned_base()). embed_rows: when the embedding
// stays memory-mapped and is not the LM head (which reads every row), the sorted distinct token
// ids the run embeds: a row gather faults in only their pages, so only those are counted (an
// untied 128k-vocabulary embedding is 1 GiB of bf16 of which a run reads a few MiB); nullptr
// counts the whole matrix.
MemoryPlan plan_memory(const Model& held, const LoraConfig& lc, const Backend& be, int64_t B, int64_t T,
                       bool recompute, bool pack, const std::vector<int32_t>* embed_rows = nullptr);

// Bytes of a memory-mapped matrix at address `data` (rows of row_bytes) that gathering the rows
// `used` (sorted, distinct, each in [0, rows)) makes resident: every page fault maps the aligned
// fault-around window around it (kFaultAroundBytes, Linux's default fault_around_bytes) when the
// file is in the page cache, clipped to the matrix. At most rows * row_bytes.
inline constexpr size_t kFaultAroundBytes = 64 * 1024;
size_t gathered_bytes(uintptr_t data, size_t row_bytes, int64_t rows, const std::vector<int32_t>& used);

// "weights 5.4 GiB + adapter 0.2 GiB + activations 4.7 GiB + workspace 0.3 GiB = 10.6 GiB of
// 23.4 GiB available" (", available memory unknown" when it is); with a quantized embedding or
// head the weights part names it: "weights 1.2 GiB (token embedding and LM head (tied, one
// tensor) Q8_0) + ...".
std::string describe_plan(const MemoryPlan& p);
// Every part in bytes, plus total, fits, B, T, recompute, packed, vocab and the description.
nlohmann::json plan_json(const MemoryPlan& p);
// "1.5 GiB", "12.0 MiB", "512.0 KiB".
std::string human_bytes(size_t bytes);

// The memory a run may use: MemAvailable plus what of the plan this process already holds in
// its own memory (base weights outside mapped files, the LoRA host image lw, the backend's
// allocations); mapped file pages are already part of MemAvailable. 0 when unknown.
size_t memory_available_for(const Model& held, const LoraWeights* lw, const Backend& be);

// What the run uses: the plan as asked; else, when recomputation was not asked, with it
// (gradient checkpointing switched on, said in notes); else also without prepared weights.
// When none fits, throws Error with the plan and hints naming --ignore-memory-check, unless
// ignore_check (then the plan as asked and a warning in notes). plan(recompute, pack) makes a
// plan with available already set.
struct MemoryChoice {
  MemoryPlan plan;
  std::vector<std::string> notes;  // each switch made, or the warning when ignored
  bool recompute = false, pack = false;  // what the run uses
};
MemoryChoice choose_memory_plan(const std::function<MemoryPlan(bool recompute, bool pack)>& plan, bool recompute,
                                bool pack, bool ignore_check);

}  // namespace tpro
