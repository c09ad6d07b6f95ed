// Fuzzes a GGUF model file end to end: the GGUF container (header, metadata of every type,
// tensor infos, alignment, data bounds), the llama/qwen2 metadata mapped onto LlamaConfig, the
// tensors loaded as a Model (one forward pass over two tokens reads every weight), and the
// embedded vocabulary (tokenizer.ggml.*) built into a Tokenizer that encodes and decodes.
// Each stage runs even when an earlier one refused the file. Expected outcome: tpro::Error.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz_util.h"
#include "formats/gguf_model.h"
#include "io/gguf.h"
#include "model/step.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

using namespace tpro;

namespace {

void run_model(const fs::path& path) {
  const Model m = load_gguf_model(path);
  const int32_t toks[2] = {0, int32_t(m.cfg.vocab_size - 1)};
  static const std::unique_ptr<Backend> be = make_backend("cpu");
  Activations a;
  make_activations(a, *be, m.cfg, nullptr, 1, 2);
  const BatchView in{1, 2, toks, nullptr, nullptr, nullptr};
  StepOptions opt;
  opt.train = false;
  forward(m, nullptr, a, in, opt);
  std::vector<float> logits(size_t(2 * m.cfg.vocab_size));
  compute_logits(m, a, logits.data());
}

void run_vocab(const GgufFile& f) {
  const Tokenizer t = Tokenizer::from_vocab(read_gguf_vocab(f));
  const std::vector<int32_t> ids = t.encode("Hello, world! <s> \xC3\xA9\xF0\x9F\x99\x82 \xFF", true);
  (void)t.decode(ids, false);
  (void)t.decode(ids, true);
  for (int32_t id = 0; id < t.vocab_size() && id < 64; ++id) (void)t.id_to_piece(id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path path = fuzz::scratch_dir() / "model.gguf";
  fuzz::put_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const GgufFile f(path);
    try {
      (void)gguf_model_config(f);
      run_model(path);
    } catch (const Error& e) {
      fuzz::expected(e);
    }
    run_vocab(f);
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
