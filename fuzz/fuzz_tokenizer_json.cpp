// Fuzzes tokenizer.json (+ tokenizer_config.json): the input is the two files joined by
// fuzz_util.h's separator line. A tokenizer that loads must encode and decode a fixed text and
// the input itself. Expected outcome for bad input: tpro::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_files(data, size, 2);
  const std::string_view config = parts.size() > 1 ? parts[1] : std::string_view();
  try {
    const Tokenizer t = Tokenizer::from_json(parts[0], config, "fuzz/tokenizer.json");
    for (std::string_view text : {std::string_view("Hello, world!\n  <s> x\xC3\xA9\xF0\x9F\x99\x82\xFF"),
                                  config.substr(0, 256)}) {
      const std::vector<int32_t> ids = t.encode(text, true);
      (void)t.decode(ids, false);
      (void)t.decode(ids, true);
    }
    for (int32_t id = 0; id < t.vocab_size() && id < 64; ++id) (void)t.is_special(id);
    (void)t.chat_template();
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
