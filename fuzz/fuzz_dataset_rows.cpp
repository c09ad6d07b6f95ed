// Fuzzes dataset files: the input's first byte picks the settings (bit 0: .json array instead
// of .jsonl; 1: formatted rows through a fixed format file instead of chat rows through a
// ChatML template; 2: skip_bad_lines; 3: train_on_inputs; 4: eliminate_long_blocks;
// 5: add_eos_token; 6: pack_samples), the rest is the file. The blocks build_dataset makes go
// through a Batcher, as training does. Tokens: one per byte (ids 0..255, 256/257 BOS/EOS).
// Expected outcome for bad input: tpro::Error naming the file and line or row.
#include <cstddef>
#include <cstdint>

#include "data/batcher.h"
#include "data/dataset.h"
#include "fuzz_util.h"

using namespace tpro;

namespace {

constexpr int32_t kBos = 256, kEos = 257;

TokenCodec byte_codec() {
  TokenCodec c;
  c.encode = [](std::string_view s) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < s.size();) {
      if (s.substr(i, 3) == "<s>") ids.push_back(kBos), i += 3;
      else if (s.substr(i, 4) == "</s>") ids.push_back(kEos), i += 4;
      else ids.push_back(int32_t(static_cast<unsigned char>(s[i++])));
    }
    return ids;
  };
  c.decode = [](std::span<const int32_t> ids) {
    std::string s;
    for (int32_t id : ids) s += id == kBos ? "<s>" : id == kEos ? "</s>" : std::string(1, char(id));
    return s;
  };
  c.bos = kBos;
  c.eos = kEos;
  return c;
}

constexpr const char* kChatml =
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

constexpr const char* kFormat = R"({
  "instruction,output": "User: %instruction%\nAssistant: %output%",
  "instruction,input,output": "User: %instruction%\nInput: %input%\nAssistant: %output%",
  "text": "%text%"
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TokenCodec codec = byte_codec();
  static const ChatRender chat = jinja_chat_render(kChatml, "chatml", "<s>", "</s>");
  static const fs::path format = [] {
    fs::path p = fuzz::scratch_dir() / "format.json";
    fuzz::put_file(p, kFormat);
    return p;
  }();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const fs::path file = fuzz::scratch_dir() / (mode & 1 ? "data.json" : "data.jsonl");
  fuzz::put_file(file, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  DataOptions opt;
  opt.dataset = file.string();
  if (mode & 2) opt.format = format.string();
  opt.skip_bad_lines = mode & 4;
  opt.train_on_inputs = mode & 8;
  opt.eliminate_long_blocks = mode & 16;
  opt.add_eos_token = mode & 32;
  opt.pack_samples = mode & 64;
  opt.train_only_after = mode & 128 ? "Assistant:" : "";
  opt.cutoff_len = 128;
  try {
    Dataset ds = build_dataset(opt, codec, chat);
    Batcher b(std::move(ds.train), BatcherConfig::from(opt, 2, 0));
    for (int i = 0; i < 3; ++i) (void)b.next();
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
