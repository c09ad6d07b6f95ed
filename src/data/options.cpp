// DataOptions helpers: EOS placement and length-switch names, escape decoding; Block helpers.
#include "data/options.h"

#include "core/error.h"
#include "data/block.h"

namespace tpro {

EosPlacement parse_eos_placement(std::string_view s) {
  if (s == "Every Block" || s == "every_block") return EosPlacement::kEveryBlock;
  if (s == "Hard Cut Blocks Only" || s == "hard_cut_only") return EosPlacement::kHardCutOnly;
  fail("add_eos_token_type: unknown value '", s,
       "' (expected 'every_block' or 'hard_cut_only'; Training PRO's 'Every Block' and "
       "'Hard Cut Blocks Only' work too)");
}

const char* eos_placement_name(EosPlacement p) {
  return p == EosPlacement::kEveryBlock ? "every_block" : "hard_cut_only";
}

const char* length_switch_name(LengthSwitch s) {
  switch (s) {
    case LengthSwitch::kNever: return "never";
    case LengthSwitch::kEpoch: return "epoch";
    case LengthSwitch::kStep: return "step";
    case LengthSwitch::kLoss: return "loss";
  }
  return "?";
}

std::string decode_escapes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[i + 1];
      if (c == 'n' || c == 'r' || c == 't' || c == '\\') {
        out.push_back(c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : '\\');
        ++i;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::kText: return "text";
    case BlockKind::kOverlap: return "overlap";
    case BlockKind::kWindow: return "window";
    case BlockKind::kFormatted: return "formatted";
    case BlockKind::kChat: return "chat";
    case BlockKind::kPacked: return "packed";
  }
  return "?";
}

int64_t Block::n_trained() const {
  int64_t n = 0;
  for (uint8_t m : mask) n += m;
  return n;
}

}  // namespace tpro
