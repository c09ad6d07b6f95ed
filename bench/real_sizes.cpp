// QLoRA at the shapes of real models on CPU: Llama-3.2-1B, Qwen3-1.7B, Llama-3.2-3B and
// Llama-3.1-8B (public configs; random bf16 weights, no downloads), NF4 base, LoRA r=16 on all
// projections, micro-batch 1. Per case, in its own process: load time (bf16 safetensors -> NF4),
// peak RSS (VmHWM), the memory plan's parts and the ratio measured / plan, step times, tok/s.
//   bench_real_sizes write SHAPE DIR       streams a bf16 model folder (the 8B is 16 GB) + tokenizer + text
//   bench_real_sizes train DIR SEQ STEPS [LIMIT_GIB] [THREADS]   steps through the real trainer
//   bench_real_sizes plan DIR SEQ [LIMIT_GIB]   the memory plan alone, nothing quantized or allocated
//   bench_real_sizes shapes                 the shapes and their parameter counts
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "formats/hf_config.h"
#include "formats/load.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"
#include "train/trainer.h"

using namespace tpro;
using nlohmann::json;

namespace {

struct Shape {
  const char* name;
  LlamaConfig cfg;
};

LlamaConfig llama3(int64_t D, int64_t F, int64_t L, int64_t H, int64_t Hkv, bool tied, double rope_factor) {
  LlamaConfig c = byte_level_llama(D, F, L, H, Hkv, 128256);
  c.tie_word_embeddings = tied;
  c.rope_theta = 500000.0;
  c.max_position = 131072;
  c.rms_norm_eps = 1e-5;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = rope_factor;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position = 8192;
  return c;
}

std::vector<Shape> shapes() {
  LlamaConfig qwen = byte_level_llama(2048, 6144, 28, 16, 8, 151936);
  qwen.architecture = "Qwen3ForCausalLM";
  qwen.model_type = "qwen3";
  qwen.head_dim = 128;
  qwen.qk_norm = true;
  qwen.tie_word_embeddings = true;
  qwen.rope_theta = 1000000.0;
  qwen.max_position = 40960;
  qwen.rms_norm_eps = 1e-6;
  return {{"llama-3.2-1b", llama3(2048, 8192, 16, 32, 8, true, 32.0)},
          {"qwen3-1.7b", qwen},
          {"llama-3.2-3b", llama3(3072, 8192, 28, 24, 8, true, 32.0)},
          {"llama-3.1-8b", llama3(4096, 14336, 32, 32, 8, false, 8.0)}};
}

const LlamaConfig& shape_config(const std::string& name) {
  static const std::vector<Shape> all = shapes();
  for (const Shape& s : all)
    if (name == s.name) return s.cfg;
  fail("unknown shape '", name, "' (expected llama-3.2-1b, qwen3-1.7b, llama-3.2-3b or llama-3.1-8b)");
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  bool ones = false;  // a norm weight
  size_t elems() const {
    size_t n = 1;
    for (int64_t s : shape) n *= size_t(s);
    return n;
  }
};

// The tensors of a Llama / Qwen3 checkpoint, in file order.
std::vector<Tensor> tensors_of(const LlamaConfig& c) {
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  std::vector<Tensor> t{{"model.embed_tokens.weight", {c.vocab_size, D}}};
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    t.push_back({p + "input_layernorm.weight", {D}, true});
    t.push_back({p + "self_attn.q_proj.weight", {Q, D}});
    t.push_back({p + "self_attn.k_proj.weight", {KV, D}});
    t.push_back({p + "self_attn.v_proj.weight", {KV, D}});
    t.push_back({p + "self_attn.o_proj.weight", {D, Q}});
    if (c.qk_norm) {
      t.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, true});
      t.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, true});
    }
    t.push_back({p + "post_attention_layernorm.weight", {D}, true});
    t.push_back({p + "mlp.gate_proj.weight", {F, D}});
    t.push_back({p + "mlp.up_proj.weight", {F, D}});
    t.push_back({p + "mlp.down_proj.weight", {D, F}});
  }
  t.push_back({"model.norm.weight", {D}, true});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, D}});
  return t;
}

// model.safetensors written tensor by tensor from a fast generator (uniform, std 0.02), so the
// writer never holds more than a 64 MiB chunk: the 8B's 16 GB are never in memory at once.
void write_safetensors_streaming(const fs::path& file, const std::vector<Tensor>& ts) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t off = 0;
  for (const Tensor& t : ts) {
    header[t.name] = {{"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {off, off + 2 * t.elems()}}};
    off += 2 * t.elems();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h.push_back(' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t((uint64_t(h.size()) >> (8 * i)) & 0xff);
  AtomicFileWriter w(file);
  w.write(len, 8);
  w.write(h.data(), h.size());
  uint64_t s = 0x9e3779b97f4a7c15ull;
  std::vector<uint16_t> chunk(size_t(32) << 20);
  const float a = 0.02f * 1.7320508f;  // uniform(-a, a) has std 0.02
  for (const Tensor& t : ts) {
    for (size_t done = 0, n = t.elems(); done < n;) {
      const size_t k = std::min(chunk.size(), n - done);
      for (size_t i = 0; i < k; ++i) {
        float v = 1.0f;
        if (!t.ones) {
          s ^= s << 13, s ^= s >> 7, s ^= s << 17;
          v = a * (float(uint32_t(s >> 40)) * (2.0f / 16777216.0f) - 1.0f);
        }
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        chunk[i] = uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
      }
      w.write(chunk.data(), 2 * k);
      done += k;
    }
  }
  w.commit();
}

int write_model(const std::string& shape, const fs::path& dir) {
  LlamaConfig c = shape_config(shape);
  c.torch_dtype = "bfloat16";
  fs::create_directories(dir);
  write_safetensors_streaming(dir / "model.safetensors", tensors_of(c));
  write_file_atomic(dir / "config.json", hf_config_json(c));
  write_file_atomic(dir / "tokenizer.json", byte_level_tokenizer_json());
  write_file_atomic(dir / "tokenizer_config.json", byte_level_tokenizer_config_json());
  // 40 KB of words without sentence ends: the slicer splits it at token boundaries into blocks
  // of exactly cutoff_len tokens (the short last one is dropped by min_chars).
  std::string text;
  for (int i = 0; text.size() < 40000; ++i) text += "qlora keeps the frozen base in four bits word " + std::to_string(i) + " ";
  write_file_atomic(dir / "text.txt", text);
  std::printf("wrote %s (%s, %lld parameters)\n", dir.string().c_str(), shape.c_str(),
              static_cast<long long>(load_model(dir).n_params()));
  return 0;
}

// "VmHWM" / "VmRSS" / "RssAnon" / "RssFile" of this process in MiB.
double status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key) + 1) / 1024.0;
  }
  return -1;
}

double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

TrainParams case_params(const fs::path& dir, int64_t seq, int64_t steps, double limit_gib, int64_t threads) {
  TrainParams p;
  p.model = dir.string();
  p.output_dir = (dir / "runs").string();
  p.lora_name = cat("bench-", seq);
  p.always_override = true;
  p.data.raw_text_file = (dir / "text.txt").string();
  p.data.cutoff_len = seq;
  p.data.min_chars = int(seq) - 8;
  p.micro_batch_size = 1;
  p.grad_accumulation = 1;
  p.lora_rank = 16;
  p.lora_alpha = 32;
  p.training_projection = "all";
  p.max_steps = steps;
  p.warmup_steps = 0;
  p.eval_steps = 0;
  p.save_steps_under_loss = 0;
  p.quantize = "nf4";
  p.memory_limit_gib = limit_gib;
  p.threads = threads;
  return p;
}

// The plan alone (nothing quantized or allocated): what train would plan and choose.
int plan(const fs::path& dir, int64_t seq, double limit_gib) {
  RunControl ctl;
  const MemoryPlanReport r = plan_training_memory(case_params(dir, seq, 1, limit_gib, 0), ctl);
  std::printf("PLAN model=%s seq=%lld limit_gib=%.1f recompute=%d %s%s\n", dir.filename().string().c_str(),
              static_cast<long long>(seq), limit_gib, r.choice.recompute ? 1 : 0, describe_plan(r.choice.plan).c_str(),
              r.refusal.empty() ? "" : cat(" REFUSED: ", r.refusal).c_str());
  return 0;
}

int train(const fs::path& dir, int64_t seq, int64_t steps, double limit_gib, int64_t threads) {
  const TrainParams p = case_params(dir, seq, steps, limit_gib, threads);
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_s();
  double load_s = 0, load_cpu_s = 0, load_hwm = 0, prev_elapsed = 0;
  std::vector<double> step_s;
  bool recompute = false;
  RunControl ctl;
  const TrainSummary s = run_training(p, ctl, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Message) {
      std::printf("  %s\n", e.text.c_str());
      if (e.text.rfind("base weights held as", 0) == 0) {
        load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        load_cpu_s = cpu_s() - cpu0;
        load_hwm = status_mib("VmHWM:");
        std::printf("  LOAD load_s=%.1f load_cpu_s=%.1f peak_after_load_mib=%.0f\n", load_s, load_cpu_s, load_hwm);
      }
      if (e.text.find("recomputed per layer") != std::string::npos) recompute = true;
    } else if (e.kind == TrainEvent::Kind::Step) {
      step_s.push_back(e.record.elapsed_s - prev_elapsed);
      prev_elapsed = e.record.elapsed_s;
      std::printf("  step %lld loss %.4f (%.1f s elapsed, RSS %.0f MiB, anon %.0f, file %.0f, peak %.0f)\n",
                  static_cast<long long>(e.record.step), e.record.loss, e.record.elapsed_s, status_mib("VmRSS:"),
                  status_mib("RssAnon:"), status_mib("RssFile:"), status_mib("VmHWM:"));
    }
    std::fflush(stdout);
  });
  const double hwm = status_mib("VmHWM:");
  const json log = json::parse(read_file(fs::path(p.output_dir) / p.lora_name / "training_log.json"));
  const json plan = log.contains("memory_plan") ? log["memory_plan"] : json();
  auto gib = [&](const char* k) { return plan.contains(k) ? plan[k].get<double>() / double(1 << 30) : -1.0; };
  const double last = step_s.empty() ? 0 : step_s.back();
  std::printf("RESULT model=%s seq=%lld steps=%lld threads=%lld load_s=%.1f load_cpu_s=%.1f peak_after_load_mib=%.0f "
              "peak_rss_mib=%.0f plan_gib=%.3f weights=%.3f adapter=%.3f activations=%.3f workspace=%.3f "
              "measured_over_plan=%.3f recompute=%d last_step_s=%.1f tok_per_s=%.1f\n",
              dir.filename().string().c_str(), static_cast<long long>(seq), static_cast<long long>(s.steps),
              static_cast<long long>(threads), load_s, load_cpu_s, load_hwm, hwm, gib("total"), gib("weights"),
              gib("adapter"), gib("activations"), gib("workspace"), hwm / 1024.0 / gib("total"),
              plan.value("recompute", recompute) ? 1 : 0, last, last > 0 ? double(seq) / last : 0.0);
  return 0;
}

int list_shapes() {
  for (const Shape& s : shapes()) {
    size_t n = 0;
    for (const Tensor& t : tensors_of(s.cfg)) n += t.elems();
    std::printf("%-14s hidden %lld, %lld layers, %lld/%lld heads, head_dim %lld, FFN %lld, vocab %lld, %s: %.3fB parameters\n",
                s.name, (long long)s.cfg.n_embd, (long long)s.cfg.n_layer, (long long)s.cfg.n_head,
                (long long)s.cfg.n_head_kv, (long long)s.cfg.head_dim, (long long)s.cfg.n_ff,
                (long long)s.cfg.vocab_size, s.cfg.tie_word_embeddings ? "tied" : "untied", double(n) / 1e9);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "write" && argc == 4) return write_model(argv[2], argv[3]);
    if (mode == "train" && argc >= 5) {
      return train(argv[2], std::atoll(argv[3]), std::atoll(argv[4]), argc > 5 ? std::atof(argv[5]) : 0.0,
                   argc > 6 ? std::atoll(argv[6]) : 0);
    }
    if (mode == "plan" && argc >= 4) return plan(argv[2], std::atoll(argv[3]), argc > 4 ? std::atof(argv[4]) : 0.0);
    if (mode == "shapes") return list_shapes();
    std::fprintf(stderr, "usage: %s write SHAPE DIR | train DIR SEQ STEPS [LIMIT_GIB] [THREADS] | plan DIR SEQ [LIMIT_GIB] | shapes\n",
                 argv[0]);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
