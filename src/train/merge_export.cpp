// Merge and write; see merge_export.h.
#include "train/merge_export.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"
#include "core/log.h"
#include "formats/gguf_model.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "kernels/backend.h"
#include "model/merge.h"
#include "tokenizer/gguf_vocab.h"

namespace tpro {

namespace {

constexpr const char* kTokenizerFiles[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                           "chat_template.jinja",     "tokenizer.model",       "generation_config.json"};

bool copy_tokenizer_files(const fs::path& base, const fs::path& out) {
  if (!fs::is_directory(base)) {
    log_warn("the base is a GGUF file: ", out.string(), " gets no tokenizer files (hint: copy tokenizer.json and ",
             "tokenizer_config.json from the original Hugging Face model)");
    return false;
  }
  for (const char* name : kTokenizerFiles) {
    std::error_code ec;
    if (!fs::exists(base / name)) continue;
    fs::copy_file(base / name, out / name, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot copy ", (base / name).string(), " to ", out.string(), ": ", ec.message());
  }
  return true;
}

// The vocabulary goes along: copied from a GGUF base, converted from a folder's tokenizer.json.
GgufModelOptions gguf_options(const MergeExport& m, WType t) {
  GgufModelOptions o;
  o.weights = t;
  o.embeddings = t;
  if (is_gguf_file(m.model)) {
    GgufFile base(m.model);
    o.name = base.get_or<std::string>("general.name", "");
    o.metadata = gguf_tokenizer_metadata(base);
  } else {
    o.name = fs::path(m.model).filename().string() + " + LoRA";
    o.metadata = gguf_vocab_from_hf(m.model, load_model_config(m.model).vocab_size);
  }
  return o;
}

}  // namespace

MergeExportResult merge_export(const MergeExport& m,
                               const std::function<void(int done, int total, const std::string& what)>& stage) {
  auto say = [&](int done, const std::string& what) {
    if (stage) stage(done, 4, what);
  };
  WType t = WType::F32;
  static const std::string kTypes[] = {"f32", "bf16", "f16", "q8_0", "q4_0", "q4_k", "q6_k"};
  if (std::find(std::begin(kTypes), std::end(kTypes), m.dtype) == std::end(kTypes) || !wtype_from_name(m.dtype, &t))
    fail("dtype '", m.dtype, "' is not a merge output type (expected f32, bf16, f16; GGUF also q8_0, q4_0, q4_k, q6_k)");
  if (!m.gguf && t != WType::F32 && t != WType::BF16 && t != WType::F16)
    fail("dtype ", m.dtype, " needs a GGUF output (a Hugging Face folder holds f32, bf16 or f16)");
  say(0, "loading the base model");
  const GgufModelOptions opts = m.gguf ? gguf_options(m, t) : GgufModelOptions{};
  const Model base = load_model(m.model);
  say(1, "loading the adapter");
  const LoraWeights lw = load_lora(m.lora, base.cfg);
  say(2, "merging");
  const std::unique_ptr<Backend> be = make_backend(m.device);
  const Model merged = merge_lora(*be, base, lw, t);
  say(3, m.gguf ? "writing the GGUF file" : "writing the Hugging Face folder");
  MergeExportResult r{lw.slots.size(), lw.cfg.scale(), false};
  if (m.gguf) {
    save_model_gguf(m.out, merged, opts);
  } else {
    save_model_hf(m.out, merged, t == WType::BF16 ? DType::BF16 : t == WType::F16 ? DType::F16 : DType::F32);
    r.base_tokenizer_copied = copy_tokenizer_files(m.model, m.out);
  }
  say(4, "done");
  return r;
}

}  // namespace tpro
