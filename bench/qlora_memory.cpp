// Peak memory of QLoRA training on CPU with a ~1B Llama-shaped model (hidden 2048, 16 layers,
// 32/8 heads, FFN 5632, vocab 32000: 0.85B parameters, 1.7 GB in bf16 on disk), random weights.
//   bench_qlora_memory write DIR                  model folder (bf16) + byte-level tokenizer + text
//   bench_qlora_memory train DIR QUANT [STEPS] [SEQ]  LoRA steps through the real trainer; prints the
//                                                  peak resident set (VmHWM) after load and at the end
//   bench_qlora_memory table                      bytes of this model's base per quantize option
//   bench_qlora_memory write-l32 DIR              the Llama-3.2-1B shape instead (vocab 128256, tied)
//   bench_qlora_memory train-vocab DIR QUANT VOCAB [STEPS] [SEQ]  train with quantize_embedding and
//                                                  quantize_head = VOCAB (none, q8_0, q6_k, ...)
//   bench_qlora_memory table-vocab                the Llama-3.2-1B shape's base per VOCAB type
// Writing and training are separate processes so the writer's buffers never count. Not a
// speed benchmark: the step times it prints are for orientation on a shared machine.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.h"
#include "formats/load.h"
#include "model/base_weights.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"
#include "train/trainer.h"

using namespace tpro;

namespace {

// Llama-1B-like shape (hidden 2048, 16 layers, 32/8 heads, FFN 5632, vocab 32000, untied head).
LlamaConfig one_b_config() {
  LlamaConfig c = byte_level_llama(2048, 5632, 16, 32, 8, 32000);
  c.tie_word_embeddings = false;
  return c;
}

// Llama-3.2-1B's shape (hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied head):
// 1.24B parameters, its 128256 x 2048 embedding a fifth of them.
LlamaConfig llama32_1b_config() {
  LlamaConfig c = byte_level_llama(2048, 8192, 16, 32, 8, 128256);
  c.tie_word_embeddings = true;
  return c;
}

// "VmHWM" / "VmRSS" of this process in MiB.
double status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key) + 1) / 1024.0;
  }
  return -1;
}

int write_model(const fs::path& dir, const LlamaConfig& c = one_b_config()) {
  write_byte_level_model(dir, c, 1, 0.02f, DType::BF16);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "QLoRA keeps the frozen base in four bits and trains a small adapter. Line " + std::to_string(i) + ".\n";
  write_file_atomic(dir / "text.txt", text);
  std::printf("wrote %s (%lld parameters)\n", dir.string().c_str(), static_cast<long long>(load_model(dir).n_params()));
  return 0;
}

int train(const fs::path& dir, const std::string& quant, int64_t steps, int64_t seq, const std::string& vocab = "none") {
  TrainParams p;
  p.model = dir.string();
  p.output_dir = (dir / "runs").string();
  p.lora_name = "bench-" + quant;
  p.always_override = true;
  p.data.raw_text_file = (dir / "text.txt").string();
  p.data.cutoff_len = seq;
  p.micro_batch_size = 1;
  p.lora_rank = 16;
  p.lora_alpha = 32;
  p.training_projection = "all";
  p.max_steps = steps;
  p.warmup_steps = 0;
  p.eval_steps = 0;
  p.save_steps_under_loss = 0;
  p.quantize = quant;
  p.quantize_embedding = p.quantize_head = vocab;
  double load_hwm = 0;
  RunControl ctl;
  const TrainSummary s = run_training(p, ctl, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Message) {
      std::printf("  %s\n", e.text.c_str());
      if (e.text.rfind("base weights held as", 0) == 0) load_hwm = status_mib("VmHWM:");
    } else if (e.kind == TrainEvent::Kind::Step) {
      std::printf("  step %lld loss %.4f (%.1f s elapsed, RSS %.0f MiB)\n", static_cast<long long>(e.record.step),
                  e.record.loss, e.record.elapsed_s, status_mib("VmRSS:"));
    }
    std::fflush(stdout);
  });
  std::printf("RESULT quantize=%s vocab=%s steps=%lld seq=%lld peak_rss_after_load_mib=%.0f peak_rss_mib=%.0f\n", quant.c_str(), vocab.c_str(),
              static_cast<long long>(s.steps), static_cast<long long>(seq), load_hwm, status_mib("VmHWM:"));
  return 0;
}

int table() {
  const LlamaConfig c = one_b_config();
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  std::printf("| quantize | projections | embedding + LM head (bf16) | base in all |\n|---|---|---|---|\n");
  for (const char* q : {"none", "q8_0", "q6_k", "q4_k", "q4_0", "nf4"}) {
    WType t = WType::BF16;
    if (std::string(q) != "none") wtype_from_name(q, &t);
    const size_t proj = size_t(c.n_layer) * (wtype_matrix_bytes(t, Q, D) + 2 * wtype_matrix_bytes(t, KV, D) +
                                             wtype_matrix_bytes(t, D, Q) + 2 * wtype_matrix_bytes(t, F, D) +
                                             wtype_matrix_bytes(t, D, F));
    const size_t emb = 2 * wtype_matrix_bytes(WType::BF16, c.vocab_size, D);
    std::printf("| %s | %.0f MiB | %.0f MiB | %.0f MiB |\n", q, double(proj) / 1048576.0, double(emb) / 1048576.0,
                double(proj + emb) / 1048576.0);
  }
  return 0;
}

// The Llama-3.2-1B shape's base (NF4 projections) per type of its one tied embedding/head tensor.
int table_vocab() {
  const LlamaConfig c = llama32_1b_config();
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  const WType t = WType::NF4;
  const size_t proj = size_t(c.n_layer) * (wtype_matrix_bytes(t, Q, D) + 2 * wtype_matrix_bytes(t, KV, D) +
                                           wtype_matrix_bytes(t, D, Q) + 2 * wtype_matrix_bytes(t, F, D) +
                                           wtype_matrix_bytes(t, D, F));
  std::printf("| embedding + head (tied) | its bytes | base in all (NF4 projections) |\n|---|---|---|\n");
  for (const char* q : {"bf16", "q8_0", "q6_k", "q4_k", "q4_0"}) {
    WType v;
    wtype_from_name(q, &v);
    const size_t emb = wtype_matrix_bytes(v, c.vocab_size, D);
    std::printf("| %s | %.0f MiB | %.0f MiB |\n", q, double(emb) / 1048576.0, double(proj + emb) / 1048576.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "write" && argc == 3) return write_model(argv[2]);
    if (mode == "train" && argc >= 4) {
      return train(argv[2], argv[3], argc > 4 ? std::atoll(argv[4]) : 2, argc > 5 ? std::atoll(argv[5]) : 64);
    }
    if (mode == "table") return table();
    if (mode == "write-l32" && argc == 3) return write_model(argv[2], llama32_1b_config());
    if (mode == "train-vocab" && argc >= 5) {
      return train(argv[2], argv[3], argc > 5 ? std::atoll(argv[5]) : 2, argc > 6 ? std::atoll(argv[6]) : 64, argv[4]);
    }
    if (mode == "table-vocab") return table_vocab();
    std::fprintf(stderr, "usage: %s write DIR | train DIR QUANT [STEPS] [SEQ] | table | write-l32 DIR | "
                 "train-vocab DIR QUANT VOCAB [STEPS] [SEQ] | table-vocab\n", argv[0]);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
