// tokenizer.json stage objects -> pipeline structs; see json_stages.h. Field defaults follow the
// serde defaults of HF tokenizers (ByteLevel add_prefix_space/use_regex true, Metaspace
// prepend_scheme "always" and split true, Digits individual_digits false).
#include "tokenizer/json_stages.h"

#include "tokenizer/unicode.h"

namespace tpro::tok {

namespace {

std::string type_of(const Json& j, const JsonAt& at, const char* what) {
  require_object(j, at);
  const Json* t = optional(j, "type");
  if (!t) at.at("type").fail(std::string("is missing (every ") + what + " names its type)");
  return get_string(*t, at.at("type"));
}

[[noreturn]] void unsupported(const JsonAt& at, const char* what, const std::string& type, const char* supported) {
  at.at("type").fail(std::string(what) + " '" + type + "' is not supported (supported: " + supported + ")");
}

Pattern parse_pattern(const Json& j, const JsonAt& at) {
  require_object(j, at);
  if (const Json* s = optional(j, "String")) return Pattern{get_string(*s, at.at("String")), nullptr};
  if (const Json* r = optional(j, "Regex")) {
    JsonAt rat = at.at("Regex");
    return Pattern{"", Regex::compile(get_string(*r, rat), rat.origin + ": " + rat.path())};
  }
  at.fail("expected {\"String\": ...} or {\"Regex\": ...}");
}

std::string get_char(const Json& obj, const char* key, const JsonAt& at) {
  std::string s = get_string(require(obj, key, at), at.at(key));
  if (s.empty() || size_t(utf8_seq_len(uint8_t(s[0]))) != s.size())
    at.at(key).fail("expected a single character, got '" + s + "'");
  return s;
}

PrependScheme parse_prepend_scheme(const Json& j, const JsonAt& at) {
  const Json* scheme = optional(j, "prepend_scheme");
  const Json* aps = optional(j, "add_prefix_space");
  if (aps && aps->is_boolean() && !aps->get<bool>()) {  // legacy field: false means never
    if (scheme && get_string(*scheme, at.at("prepend_scheme")) != "never")
      at.fail("add_prefix_space is false but prepend_scheme is not \"never\"");
    return PrependScheme::Never;
  }
  if (!scheme) return PrependScheme::Always;
  std::string s = get_string(*scheme, at.at("prepend_scheme"));
  if (s == "always") return PrependScheme::Always;
  if (s == "first") return PrependScheme::First;
  if (s == "never") return PrependScheme::Never;
  at.at("prepend_scheme").fail("expected \"always\", \"first\" or \"never\", got \"" + s + "\"");
}

SplitBehavior parse_behavior(const Json& j, const JsonAt& at) {
  std::string s = get_string(require(j, "behavior", at), at.at("behavior"));
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  at.at("behavior")
      .fail("unknown split behavior '" + s +
            "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

size_t get_count(const Json& obj, const char* key, const JsonAt& at) {
  const Json* v = optional(obj, key);
  if (!v) return 0;
  int64_t n = get_int(*v, at.at(key));
  if (n < 0) at.at(key).fail("must not be negative, got " + std::to_string(n));
  return size_t(n);
}

// Looks a TemplateProcessing special token up in its "special_tokens" map.
void template_ids(const Json& specials, const std::string& name, const JsonAt& at, std::vector<int32_t>& out) {
  const Json* entry = optional(specials, name.c_str());
  if (!entry) at.fail("special token '" + name + "' is not listed in special_tokens");
  JsonAt eat = at.at(name);
  const Json& ids = require(*entry, "ids", eat);
  require_array(ids, eat.at("ids"));
  for (size_t i = 0; i < ids.size(); ++i) out.push_back(int32_t(get_int(ids[i], eat.at("ids").at(i))));
}

void parse_template(const Json& j, const JsonAt& at, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  const Json& single = require(j, "single", at);
  JsonAt sat = at.at("single");
  require_array(single, sat);
  const Json* specials = optional(j, "special_tokens");
  Json empty = Json::object();
  bool seen_a = false;
  prefix.clear();
  suffix.clear();
  for (size_t i = 0; i < single.size(); ++i) {
    JsonAt iat = sat.at(i);
    if (const Json* seq = optional(single[i], "Sequence")) {
      std::string id = get_string(require(*seq, "id", iat.at("Sequence")), iat.at("Sequence").at("id"));
      if (id != "A") iat.fail("a single-sequence template can only use sequence A, got '" + id + "'");
      seen_a = true;
    } else if (const Json* sp = optional(single[i], "SpecialToken")) {
      std::string name = get_string(require(*sp, "id", iat.at("SpecialToken")), iat.at("SpecialToken").at("id"));
      template_ids(specials ? *specials : empty, name, at.at("special_tokens"), seen_a ? suffix : prefix);
    } else {
      iat.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  if (!seen_a) sat.fail("the template never places the sequence ($A)");
}

// Roberta/Bert processing: {"cls": ["<s>", 0], "sep": ["</s>", 2]} -> cls A sep.
int32_t pair_id(const Json& j, const char* key, const JsonAt& at) {
  const Json& v = require(j, key, at);
  if (!v.is_array() || v.size() != 2) at.at(key).fail("expected [token, id]");
  return int32_t(get_int(v[1], at.at(key).at(size_t(1))));
}

// A Sequence inside `depth` others: refuses to go deeper than kMaxSequenceDepth, before
// recursing (a file nesting them 20000 deep would otherwise take the stack and the time).
void check_sequence_depth(int depth, const JsonAt& at, const char* what) {
  if (depth < kMaxSequenceDepth) return;
  at.fail(std::string(what) + " Sequences are nested " + std::to_string(depth + 1) + " deep, over the limit of " +
          std::to_string(kMaxSequenceDepth) +
          " (hint: real tokenizer.json files nest them one or two deep; this file is malformed or hostile)");
}

}  // namespace

void parse_normalizer(const Json& j, const JsonAt& at, std::vector<Normalizer>& out, int depth) {
  if (j.is_null()) return;
  std::string type = type_of(j, at, "normalizer");
  Normalizer n;
  if (type == "Sequence") {
    check_sequence_depth(depth, at, "normalizer");
    const Json& list = require(j, "normalizers", at);
    require_array(list, at.at("normalizers"));
    for (size_t i = 0; i < list.size(); ++i) parse_normalizer(list[i], at.at("normalizers").at(i), out, depth + 1);
    return;
  } else if (type == "NFC") {
    n.kind = Normalizer::Kind::Nfc;
  } else if (type == "NFD") {
    n.kind = Normalizer::Kind::Nfd;
  } else if (type == "Prepend" || type == "Append") {
    n.kind = type == "Prepend" ? Normalizer::Kind::Prepend : Normalizer::Kind::Append;
    const char* key = type == "Prepend" ? "prepend" : "append";
    n.content = get_string(require(j, key, at), at.at(key));
  } else if (type == "Replace") {
    n.kind = Normalizer::Kind::Replace;
    n.pattern = parse_pattern(require(j, "pattern", at), at.at("pattern"));
    n.content = get_string(require(j, "content", at), at.at("content"));
  } else if (type == "Strip") {
    n.kind = Normalizer::Kind::Strip;
    n.left = get_bool(j, "strip_left", false, at);
    n.right = get_bool(j, "strip_right", false, at);
  } else if (type == "ByteLevel") {
    n.kind = Normalizer::Kind::ByteLevel;
  } else {
    unsupported(at, "normalizer", type, "Sequence, NFC, NFD, Prepend, Append, Replace, Strip, ByteLevel");
  }
  out.push_back(std::move(n));
}

void parse_pre_tokenizer(const Json& j, const JsonAt& at, std::vector<PreTokenizer>& out, int depth) {
  if (j.is_null()) return;
  std::string type = type_of(j, at, "pre-tokenizer");
  PreTokenizer p;
  if (type == "Sequence") {
    check_sequence_depth(depth, at, "pre-tokenizer");
    const Json& list = require(j, "pretokenizers", at);
    require_array(list, at.at("pretokenizers"));
    for (size_t i = 0; i < list.size(); ++i) parse_pre_tokenizer(list[i], at.at("pretokenizers").at(i), out, depth + 1);
    return;
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::ByteLevel;
    p.add_prefix_space = get_bool(j, "add_prefix_space", true, at);
    p.use_regex = get_bool(j, "use_regex", true, at);
  } else if (type == "Split") {
    p.kind = PreTokenizer::Kind::Split;
    p.pattern = parse_pattern(require(j, "pattern", at), at.at("pattern"));
    p.behavior = parse_behavior(j, at);
    p.invert = get_bool(j, "invert", false, at);
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::Digits;
    p.individual_digits = get_bool(j, "individual_digits", false, at);
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::Metaspace;
    p.replacement = get_char(j, "replacement", at);
    p.prepend_scheme = parse_prepend_scheme(j, at);
    p.split = get_bool(j, "split", true, at);
  } else if (type == "Punctuation") {
    p.kind = PreTokenizer::Kind::Punctuation;
    p.behavior = optional(j, "behavior") ? parse_behavior(j, at) : SplitBehavior::Isolated;
  } else if (type == "Whitespace") {
    p.kind = PreTokenizer::Kind::Whitespace;
  } else if (type == "WhitespaceSplit") {
    p.kind = PreTokenizer::Kind::WhitespaceSplit;
  } else {
    unsupported(at, "pre-tokenizer", type,
                "Sequence, ByteLevel, Split, Digits, Metaspace, Punctuation, Whitespace, WhitespaceSplit");
  }
  out.push_back(std::move(p));
}

void parse_decoder(const Json& j, const JsonAt& at, std::vector<Decoder>& out, int depth) {
  if (j.is_null()) return;
  std::string type = type_of(j, at, "decoder");
  Decoder d;
  if (type == "Sequence") {
    check_sequence_depth(depth, at, "decoder");
    const Json& list = require(j, "decoders", at);
    require_array(list, at.at("decoders"));
    for (size_t i = 0; i < list.size(); ++i) parse_decoder(list[i], at.at("decoders").at(i), out, depth + 1);
    return;
  } else if (type == "ByteLevel") {
    d.kind = Decoder::Kind::ByteLevel;
  } else if (type == "ByteFallback") {
    d.kind = Decoder::Kind::ByteFallback;
  } else if (type == "Fuse") {
    d.kind = Decoder::Kind::Fuse;
  } else if (type == "Replace") {
    d.kind = Decoder::Kind::Replace;
    d.pattern = parse_pattern(require(j, "pattern", at), at.at("pattern"));
    d.content = get_string(require(j, "content", at), at.at("content"));
  } else if (type == "Strip") {
    d.kind = Decoder::Kind::Strip;
    d.content = get_char(j, "content", at);
    d.start = get_count(j, "start", at);
    d.stop = get_count(j, "stop", at);
  } else if (type == "Metaspace") {
    d.kind = Decoder::Kind::Metaspace;
    d.replacement = get_char(j, "replacement", at);
    d.prepend_scheme = parse_prepend_scheme(j, at);
  } else {
    unsupported(at, "decoder", type, "Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace");
  }
  out.push_back(std::move(d));
}

void parse_post_processor(const Json& j, const JsonAt& at, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix,
                          int depth) {
  if (j.is_null()) return;
  std::string type = type_of(j, at, "post-processor");
  if (type == "Sequence") {
    check_sequence_depth(depth, at, "post-processor");
    const Json& list = require(j, "processors", at);
    require_array(list, at.at("processors"));
    for (size_t i = 0; i < list.size(); ++i) parse_post_processor(list[i], at.at("processors").at(i), prefix, suffix, depth + 1);
  } else if (type == "TemplateProcessing") {
    parse_template(j, at, prefix, suffix);
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    prefix = {pair_id(j, "cls", at)};
    suffix = {pair_id(j, "sep", at)};
  } else if (type != "ByteLevel") {
    unsupported(at, "post-processor", type,
                "Sequence, TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing");
  }
}

}  // namespace tpro::tok
