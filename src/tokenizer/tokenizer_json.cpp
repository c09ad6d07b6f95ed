// tokenizer.json (+ tokenizer_config.json) -> Pipeline. Validates what HF would reject or
// silently repair: vocabulary ids, merges naming unknown tokens, added-token ids that differ
// from the ids HF assigns, BOS/EOS names missing from the vocabulary.
// Reference: huggingface/tokenizers tokenizer/serialization.rs and models/bpe/serialization.rs.
#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/json_stages.h"
#include "tokenizer/loaders.h"

namespace tpro::tok {

namespace {

// The flat lists come from parse_tokenizer_json; paths are only built on failure.
void parse_vocab(const BulkLists& bulk, const JsonAt& at, Pipeline& p) {
  size_t n = bulk.vocab.size();
  p.pieces.assign(n, std::string());
  p.kinds.assign(n, PieceKind::Hole);
  p.model.vocab.reserve(n);
  for (const auto& [piece, id] : bulk.vocab) {
    if (id < 0 || size_t(id) >= n)
      at.at(piece).fail("id " + std::to_string(id) + " is out of range: the vocabulary has " + std::to_string(n) +
                        " entries, so ids must be 0.." + std::to_string(n - 1));
    if (p.kinds[size_t(id)] != PieceKind::Hole)
      at.fail("tokens '" + p.pieces[size_t(id)] + "' and '" + piece + "' share id " + std::to_string(id));
    p.pieces[size_t(id)] = piece;
    p.kinds[size_t(id)] = PieceKind::Normal;
    p.model.vocab.emplace(piece, int32_t(id));
  }
  p.piece_ids = p.model.vocab;
}

void parse_merges(const BulkLists& bulk, const JsonAt& at, Pipeline& p) {
  BpeModel& m = p.model;
  size_t prefix_len = m.continuing_subword_prefix.size();
  std::string merged;
  m.reserve_merges(bulk.merges.size());
  for (size_t i = 0; i < bulk.merges.size(); ++i) {
    // Named references, not a structured binding: clang before 16 cannot capture those (fuzz build).
    const std::string& a = bulk.merges[i].first;
    const std::string& b = bulk.merges[i].second;
    auto ia = m.vocab.find(a), ib = m.vocab.find(b);
    auto bad = [&](const std::string& what) { at.at(i).fail("merge '" + a + " " + b + "' " + what); };
    if (ia == m.vocab.end()) bad("names unknown token '" + a + "'");
    if (ib == m.vocab.end()) bad("names unknown token '" + b + "'");
    merged.assign(a);
    merged.append(b, std::min(prefix_len, b.size()));
    auto im = m.vocab.find(std::string_view(merged));
    if (im == m.vocab.end()) bad("produces '" + merged + "', which is not in the vocabulary");
    m.add_merge(ia->second, ib->second, uint32_t(i), im->second);
  }
}

std::string optional_string(const Json& j, const char* key, const JsonAt& at) {
  const Json* v = optional(j, key);
  return v ? get_string(*v, at.at(key)) : std::string();
}

void parse_model(const Json& j, const JsonAt& at, const BulkLists& bulk, Pipeline& p) {
  require_object(j, at);
  const Json* type_field = optional(j, "type");
  std::string type = type_field ? get_string(*type_field, at.at("type")) : (j.contains("merges") ? "BPE" : "");
  if (type.empty()) at.at("type").fail("is missing and there are no merges, so this is not a BPE model");
  if (type != "BPE") {
    std::string hint = type == "WordPiece" ? "WordPiece belongs to BERT-style encoders"
                       : type == "Unigram" ? "Unigram is SentencePiece's unigram model (T5, XLM-R, ALBERT)"
                                           : "only byte-pair-encoding models are implemented";
    at.at("type").fail("model type '" + type +
                       "' is not supported; tpro supports BPE tokenizers (GPT-2, Llama, "
                       "Mistral, Qwen, Gemma, SmolLM) (hint: " +
                       hint + ")");
  }
  if (const Json* d = optional(j, "dropout"); d && d->is_number() && d->get<double>() > 0)
    at.at("dropout").fail("BPE dropout " + d->dump() + " is not supported (it makes tokenization random)");
  BpeModel& m = p.model;
  m.byte_fallback = get_bool(j, "byte_fallback", false, at);
  m.fuse_unk = get_bool(j, "fuse_unk", false, at);
  m.ignore_merges = get_bool(j, "ignore_merges", false, at);
  m.continuing_subword_prefix = optional_string(j, "continuing_subword_prefix", at);
  m.end_of_word_suffix = optional_string(j, "end_of_word_suffix", at);
  require(j, "vocab", at);
  if (!bulk.has_vocab) at.at("vocab").fail(std::string("expected an object, got ") + j["vocab"].type_name());
  if (!bulk.vocab_error.empty()) JsonAt{at.origin, bulk.vocab_error_path}.fail(bulk.vocab_error);
  parse_vocab(bulk, at.at("vocab"), p);
  if (const Json* unk = optional(j, "unk_token")) {
    m.unk_token = get_string(*unk, at.at("unk_token"));
    m.has_unk = true;
    auto it = m.vocab.find(m.unk_token);
    m.unk_id = it == m.vocab.end() ? -1 : it->second;
  }
  m.finish_vocab();
  if (const Json* merges = optional(j, "merges"); merges && !bulk.has_merges)
    at.at("merges").fail(std::string("expected an array, got ") + merges->type_name());
  if (!bulk.merges_error.empty()) JsonAt{at.origin, bulk.merges_error_path}.fail(bulk.merges_error);
  parse_merges(bulk, at.at("merges"), p);
}

// The id HF's AddedVocabulary gives a token that is not in the model vocabulary: the one after
// the largest added id beyond the vocabulary, else the vocabulary size.
int32_t next_added_id(const Pipeline& p) {
  int32_t model_size = int32_t(p.model.vocab.size()), next = model_size;
  for (const AddedToken& t : p.added.tokens) next = std::max(next, t.id >= model_size ? t.id + 1 : next);
  return next;
}

// Adds t with the id the file states, which must be the id HF assigns: the vocabulary id for
// known contents, else `next_id` (HF would silently renumber), which then advances.
void add_checked(AddedToken t, int64_t id, const JsonAt& at, Pipeline& p, int32_t& next_id) {
  if (t.content.empty()) at.at("content").fail("an added token cannot be empty");
  auto known = p.model.vocab.find(t.content);
  int32_t expected = known != p.model.vocab.end() ? known->second : next_id;
  if (id != expected) {
    if (known != p.model.vocab.end())
      at.at("id").fail("added token '" + t.content + "' has id " + std::to_string(id) +
                       ", but the vocabulary gives it id " + std::to_string(expected));
    at.at("id").fail("added token '" + t.content + "' has id " + std::to_string(id) + ", out of range: the " +
                     std::to_string(p.model.vocab.size()) +
                     "-token vocabulary and the added tokens before it put "
                     "it at id " +
                     std::to_string(expected) +
                     " (hint: added tokens outside the vocabulary must "
                     "follow it in order, without gaps)");
  }
  if (known == p.model.vocab.end()) ++next_id;
  t.id = int32_t(id);
  p.added.tokens.push_back(std::move(t));
}

AddedToken parse_added_token(const Json& e, const JsonAt& at) {
  AddedToken t;
  t.content = get_string(require(e, "content", at), at.at("content"));
  t.special = get_bool(e, "special", false, at);
  t.lstrip = get_bool(e, "lstrip", false, at);
  t.rstrip = get_bool(e, "rstrip", false, at);
  t.single_word = get_bool(e, "single_word", false, at);
  t.normalized = get_bool(e, "normalized", !t.special, at);
  return t;
}

void parse_added_tokens(const Json& list, const JsonAt& at, Pipeline& p) {
  require_array(list, at);
  int32_t next_id = next_added_id(p);
  for (size_t i = 0; i < list.size(); ++i) {
    JsonAt tat = at.at(i);
    AddedToken t = parse_added_token(list[i], tat);
    add_checked(std::move(t), get_int(require(list[i], "id", tat), tat.at("id")), tat, p, next_id);
  }
}

// transformers adds what tokenizer_config.json declares but tokenizer.json lacks: entries of
// added_tokens_decoder, then the named special tokens (a vocabulary token named as bos/eos/...
// becomes a special added token, matched whole in text). Returns whether anything was added.
bool add_config_tokens(const Json& c, const JsonAt& at, Pipeline& p) {
  size_t before = p.added.tokens.size();
  std::unordered_map<std::string, int32_t> added_ids;  // content -> id
  for (const AddedToken& t : p.added.tokens) added_ids.emplace(t.content, t.id);
  int32_t next_id = next_added_id(p);
  if (const Json* dec = optional(c, "added_tokens_decoder")) {
    require_object(*dec, at.at("added_tokens_decoder"));
    std::vector<std::pair<int64_t, const Json*>> entries;
    for (auto it = dec->begin(); it != dec->end(); ++it) {
      char* end = nullptr;
      long long id = std::strtoll(it.key().c_str(), &end, 10);
      if (it.key().empty() || *end != '\0')
        at.at("added_tokens_decoder").at(it.key()).fail("expected an integer id as key");
      entries.emplace_back(id, &it.value());
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto [id, e] : entries) {
      JsonAt eat = at.at("added_tokens_decoder").at(std::to_string(id));
      AddedToken t = parse_added_token(*e, eat);
      if (auto have = added_ids.find(t.content); have != added_ids.end()) {
        if (have->second != id)
          eat.fail("'" + t.content + "' has id " + std::to_string(id) + " here but " + std::to_string(have->second) +
                   " in tokenizer.json");
        continue;
      }
      added_ids.emplace(t.content, int32_t(id));
      add_checked(std::move(t), id, eat, p, next_id);
    }
  }
  std::vector<std::pair<std::string, std::string>> named;  // (key, content)
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (const Json* v = optional(c, key)) named.emplace_back(key, get_token_content(*v, at.at(key)));
  if (const Json* extra = optional(c, "additional_special_tokens")) {
    require_array(*extra, at.at("additional_special_tokens"));
    for (size_t i = 0; i < extra->size(); ++i)
      named.emplace_back("additional_special_tokens",
                         get_token_content((*extra)[i], at.at("additional_special_tokens").at(i)));
  }
  for (const auto& [key, content] : named) {
    if (content.empty() || added_ids.count(content)) continue;
    auto it = p.model.vocab.find(content);
    if (it == p.model.vocab.end()) {
      if (key != "bos_token" && key != "eos_token" && key != "pad_token")
        log_warn(at.origin, ": ", key, " '", content, "' is not in the vocabulary; ignored");
      continue;  // bos/eos/pad fail with a clear message when they are resolved
    }
    AddedToken t;
    t.content = content;
    t.id = it->second;
    t.special = true;
    added_ids.emplace(content, t.id);
    p.added.tokens.push_back(std::move(t));
  }
  return p.added.tokens.size() != before;
}

int32_t token_id(const Pipeline& p, const std::string& content, const JsonAt& at) {
  auto it = p.piece_ids.find(content);
  if (it == p.piece_ids.end()) at.fail("token '" + content + "' is not in the vocabulary");
  return it->second;
}

// The id of the config's bos_token/eos_token/pad_token, or `current` when it is null or absent.
int32_t named_id(const Json& c, const char* key, const JsonAt& at, const Pipeline& p, int32_t current) {
  const Json* v = optional(c, key);
  if (!v) return current;
  std::string content = get_token_content(*v, at.at(key));
  return content.empty() ? current : token_id(p, content, at.at(key));
}

// A string, or [{"name": "default", "template": ...}, ...] (the default one is used).
std::string chat_template_of(const Json& t, const JsonAt& at) {
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array() || t.empty())
    at.fail(std::string("expected a string or a list of named templates, got ") + t.type_name());
  size_t pick = 0;
  for (size_t i = 0; i < t.size(); ++i)
    if (const Json* name = optional(t[i], "name"); name && *name == "default") pick = i;
  return get_string(require(t[pick], "template", at.at(pick)), at.at(pick).at("template"));
}

// BOS/EOS/PAD names, add_bos_token/add_eos_token and the chat template.
void apply_config(const Json& c, const JsonAt& at, Pipeline& p) {
  require_object(c, at);
  if (add_config_tokens(c, at, p)) p.finish();
  p.bos_id = named_id(c, "bos_token", at, p, p.bos_id);
  p.eos_id = named_id(c, "eos_token", at, p, p.eos_id);
  p.pad_id = named_id(c, "pad_token", at, p, p.pad_id);
  // transformers' Llama/Gemma fast tokenizers rebuild the post-processor from these flags.
  if (optional(c, "add_bos_token") || optional(c, "add_eos_token")) {
    bool had_bos = std::find(p.prefix_ids.begin(), p.prefix_ids.end(), p.bos_id) != p.prefix_ids.end();
    bool had_eos = std::find(p.suffix_ids.begin(), p.suffix_ids.end(), p.eos_id) != p.suffix_ids.end();
    bool add_bos = get_bool(c, "add_bos_token", had_bos && p.bos_id >= 0, at);
    bool add_eos = get_bool(c, "add_eos_token", had_eos && p.eos_id >= 0, at);
    if (add_bos && p.bos_id < 0) at.at("add_bos_token").fail("is true but no bos_token is set");
    if (add_eos && p.eos_id < 0) at.at("add_eos_token").fail("is true but no eos_token is set");
    set_bos_eos(p, add_bos, add_eos);
  }
  if (const Json* t = optional(c, "chat_template")) p.chat_template = chat_template_of(*t, at.at("chat_template"));
}

void check_post_ids(const Pipeline& p, const JsonAt& at) {
  for (const auto* v : {&p.prefix_ids, &p.suffix_ids})
    for (int32_t id : *v)
      if (id < 0 || id >= p.size() || p.kinds[size_t(id)] == PieceKind::Hole)
        at.fail("adds token id " + std::to_string(id) + ", which is not in the vocabulary (size " +
                std::to_string(p.size()) + ")");
}

}  // namespace

void load_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json, const std::string& origin,
                         Pipeline& p) {
  BulkLists bulk;
  Json j = parse_tokenizer_json(tokenizer_json, origin, bulk);
  JsonAt root{origin, ""};
  require_object(j, root);
  parse_model(require(j, "model", root), root.at("model"), bulk, p);
  if (const Json* list = optional(j, "added_tokens")) parse_added_tokens(*list, root.at("added_tokens"), p);
  if (const Json* n = optional(j, "normalizer")) parse_normalizer(*n, root.at("normalizer"), p.normalizers);
  if (const Json* t = optional(j, "pre_tokenizer")) parse_pre_tokenizer(*t, root.at("pre_tokenizer"), p.pre_tokenizers);
  if (const Json* d = optional(j, "decoder")) {
    parse_decoder(*d, root.at("decoder"), p.decoders);
    p.has_decoder = true;
  }
  if (const Json* pp = optional(j, "post_processor"))
    parse_post_processor(*pp, root.at("post_processor"), p.prefix_ids, p.suffix_ids);
  p.finish();
  check_post_ids(p, root.at("post_processor"));
  // Without a config, BOS/EOS are what the post-processor adds.
  if (!p.prefix_ids.empty()) p.bos_id = p.prefix_ids.front();
  if (!p.suffix_ids.empty()) p.eos_id = p.suffix_ids.back();
  if (!config_json.empty()) {
    std::string config_origin = origin;
    size_t slash = config_origin.find_last_of('/');
    config_origin = (slash == std::string::npos ? "" : config_origin.substr(0, slash + 1)) + "tokenizer_config.json";
    apply_config(parse_json(config_json, config_origin), JsonAt{config_origin, ""}, p);
  }
}

}  // namespace tpro::tok
