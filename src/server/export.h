// The server's export jobs, run one at a time by the JobManager: merge an adapter into its base
// as a Hugging Face folder or a GGUF file (written into --models, where it is a base model
// from then on), convert a PEFT adapter to a GGUF adapter for llama.cpp, or pack an adapter
// folder as a zip of stored entries (both written into --loras, and downloadable). Outputs go
// to a temp file or folder first and are renamed into place; an existing output is replaced
// only when the request said so (request.h checks that and every path). Not here: HTTP.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace tpro {

enum class ExportKind { MergeHf, MergeGguf, AdapterGguf, Zip };
const char* export_kind_name(ExportKind k);  // "merge", "merge_gguf", "adapter_gguf", "zip"

struct ExportJob {
  ExportKind kind = ExportKind::Zip;
  std::filesystem::path lora;   // a PEFT folder, or (merges) a GGUF adapter file, in --loras
  std::filesystem::path model;  // the base in --models (merges; adapter_gguf reads its config)
  std::filesystem::path out;    // resolved, inside --models (merges) or --loras
  std::string dtype = "f32";
  bool overwrite = false;             // replace an existing output (the user confirmed it)
  bool include_checkpoints = false;   // zip: checkpoint-*/ folders too
  std::string lora_name, model_name, out_name;  // as shown (relative to their folders)
};

// Files a zip export takes at most, and the bytes read per chunk between stop checks.
constexpr size_t kMaxZipEntries = 10000;
constexpr size_t kZipChunk = size_t(1) << 20;

// progress(done, total, what): said as the job moves (bytes for a zip, stages otherwise); it
// may throw to stop the job, which then leaves no output behind. Returns the result:
// {kind, out, bytes, ...}. Throws Error on failure.
using ExportProgress = std::function<void(int64_t done, int64_t total, const std::string& what)>;
nlohmann::json run_export(const ExportJob& job, const ExportProgress& progress);

}  // namespace tpro
