// The special token a chat template writes right after an assistant's message (<|im_end|>,
// <|eot_id|>, <end_of_turn>), found by rendering a probe turn. Generation stops there, as it
// does at the tokenizer's end-of-text token (the Playground and `tpro generate --chat`).
#pragma once
#include <cstdint>
#include <vector>

#include "data/chat.h"

namespace tpro {

class Tokenizer;

// Renders `msgs` plus one assistant message and returns the id of the special token that
// follows the message's text; -1 when none follows or the template refuses the conversation.
int32_t end_of_turn_id(const ChatRender& render, const Tokenizer& tok, std::vector<ChatMessage> msgs);

}  // namespace tpro
