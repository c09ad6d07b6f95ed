// See end_of_turn.h.
#include "data/end_of_turn.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

int32_t end_of_turn_id(const ChatRender& render, const Tokenizer& tok, std::vector<ChatMessage> msgs) {
  static const std::string kProbe = "tpro-end-of-turn-probe";
  msgs.push_back({"assistant", kProbe});
  try {
    const std::string text = render(msgs, false);
    const size_t at = text.rfind(kProbe);
    if (at == std::string::npos) return -1;
    const std::vector<int32_t> ids = tok.encode(text.substr(at + kProbe.size()), false);
    return !ids.empty() && tok.is_special(ids[0]) ? ids[0] : -1;
  } catch (const Error&) {
    return -1;  // a template that refuses this conversation: eos alone ends a turn
  }
}

}  // namespace tpro
