// The data pipeline's entry points that take a tpro::Tokenizer: its codec and chat template
// wired into the codec-level functions (kept in one file so everything else links and tests
// without the tokenizer's implementation).
#include <filesystem>

#include "core/error.h"
#include "core/file.h"
#include "data/builtin_templates.h"
#include "data/check.h"
#include "data/dataset.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

namespace {

// The chat template to use: chat_template_file when set (a built-in name or a file), else the tokenizer's; an empty
// function when there is none (chat rows then fail with a hint).
ChatRender chat_render_for(const DataOptions& opt, const Tokenizer& tok) {
  std::string source = tok.chat_template(), origin = "the tokenizer's chat template";
  if (const std::string* builtin = builtin_chat_template(opt.chat_template_file)) {
    source = *builtin;
    origin = "the built-in " + opt.chat_template_file + " chat template";
  } else if (!opt.chat_template_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(opt.chat_template_file, ec))
      fail("chat_template_file not found: ", opt.chat_template_file, " (hint: a .jinja file, or one of the built-in ",
           "templates: ", builtin_chat_template_names(), ")");
    source = read_file(opt.chat_template_file);
    origin = opt.chat_template_file;
  }
  if (source.empty()) return {};
  return jinja_chat_render(std::move(source), std::move(origin), tok.bos_token(), tok.eos_token(),
                           opt.chat_template_kwargs);
}

}  // namespace

TokenCodec codec_of(const Tokenizer& tok) {
  TokenCodec c;
  c.encode = [&tok](std::string_view text) { return tok.encode(text, /*add_special=*/false); };
  c.decode = [&tok](std::span<const int32_t> ids) { return tok.decode(ids, /*skip_special=*/false); };
  c.bos = tok.bos_id();
  c.eos = tok.eos_id();
  return c;
}

Dataset build_dataset(const DataOptions& opt, const Tokenizer& tok) {
  ChatRender chat = opt.rows_path().empty() ? ChatRender{} : chat_render_for(opt, tok);
  return build_dataset(opt, codec_of(tok), chat);
}

CheckReport check_dataset(const DataOptions& opt, const Tokenizer& tok, int micro_batch_size, int grad_accumulation,
                          double epochs) {
  ChatRender chat = opt.rows_path().empty() ? ChatRender{} : chat_render_for(opt, tok);
  return check_dataset(opt, codec_of(tok), chat, micro_batch_size, grad_accumulation, epochs);
}

void write_check_sample(const std::filesystem::path& path, const CheckReport& r, const Tokenizer& tok) {
  write_check_sample(path, r, codec_of(tok));
}

}  // namespace tpro
