// tpro::Tokenizer: the encode path (added tokens -> normalizers -> added tokens in normalized
// text -> pre-tokenizers -> BPE -> BOS/EOS), decode, and loading a model folder. Parsing lives
// in tokenizer_json.cpp (tokenizer.json) and vocab_data.cpp (GGUF vocabularies).
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace tpro {

namespace tok {

void Pipeline::finish() {
  int32_t n = int32_t(pieces.size());
  for (const AddedToken& t : added.tokens) n = std::max(n, t.id + 1);
  pieces.resize(size_t(n));
  kinds.resize(size_t(n), PieceKind::Hole);
  added.raw.clear();
  added.normalized.clear();
  for (size_t i = 0; i < added.tokens.size(); ++i) {
    const AddedToken& t = added.tokens[i];
    pieces[size_t(t.id)] = t.content;
    kinds[size_t(t.id)] = t.special ? PieceKind::Special : PieceKind::Added;
    piece_ids[t.content] = t.id;
    if (t.normalized) {
      added.normalized.add(normalize(normalizers, t.content), int32_t(i));
    } else {
      added.raw.add(t.content, int32_t(i));
    }
  }
}

void Pipeline::encode(std::string_view text, bool add_special, std::vector<int32_t>& out) const {
  std::string repaired;
  if (!utf8_valid(text)) {  // as if the bytes had been decoded with errors="replace"
    repaired = utf8_lossy(text);
    text = repaired;
  }
  if (add_special) out.insert(out.end(), prefix_ids.begin(), prefix_ids.end());
  std::vector<Segment> segs;
  added.split(text, added.raw, segs);
  for (const Segment& s : segs) {
    if (s.id >= 0) {
      out.push_back(s.id);
    } else {
      encode_text(text.substr(s.start, s.end - s.start), s.start == 0, out);
    }
  }
  if (add_special) out.insert(out.end(), suffix_ids.begin(), suffix_ids.end());
}

void Pipeline::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  std::string normalized;
  std::string_view norm = text;
  if (!normalizers.empty()) {
    normalized = normalize(normalizers, std::string(text));
    norm = normalized;
  }
  std::vector<Segment> segs;
  added.split(norm, added.normalized, segs);
  std::vector<Piece> pieces;
  for (const Segment& s : segs) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    pieces.clear();
    pieces.push_back({std::string(norm.substr(s.start, s.end - s.start)), at_start && s.start == 0});
    pre_tokenize(pre_tokenizers, pieces);
    for (const Piece& p : pieces) model.tokenize(p.text, out);
  }
}

std::string Pipeline::decode(const int32_t* ids, size_t n, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    int32_t id = ids[i];
    if (id < 0 || id >= size() || kinds[size_t(id)] == PieceKind::Hole)
      fail("decode: token id ", id, " at position ", i, " is not in the vocabulary (size ", size(), ")");
    if (skip_special && kinds[size_t(id)] == PieceKind::Special) continue;
    tokens.push_back(pieces[size_t(id)]);
  }
  return decode_tokens(decoders, has_decoder, std::move(tokens));
}

void set_bos_eos(Pipeline& p, bool add_bos, bool add_eos) {
  p.prefix_ids.clear();
  p.suffix_ids.clear();
  if (add_bos) {
    if (p.bos_id < 0) fail("add_bos is set but the tokenizer has no BOS token");
    p.prefix_ids.push_back(p.bos_id);
  }
  if (add_eos) {
    if (p.eos_id < 0) fail("add_eos is set but the tokenizer has no EOS token");
    p.suffix_ids.push_back(p.eos_id);
  }
}

}  // namespace tok

struct Tokenizer::Impl {
  tok::Pipeline p;
  std::string bos_token, eos_token;

  void set_token_names() {
    bos_token = p.bos_id >= 0 ? p.pieces[size_t(p.bos_id)] : "";
    eos_token = p.eos_id >= 0 ? p.pieces[size_t(p.eos_id)] : "";
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& origin) {
  Tokenizer t;
  tok::load_tokenizer_json(tokenizer_json, config_json, origin, t.impl_->p);
  t.impl_->set_token_names();
  return t;
}

Tokenizer Tokenizer::from_vocab(const VocabData& vocab) {
  Tokenizer t;
  tok::load_vocab_data(vocab, t.impl_->p);
  t.impl_->set_token_names();
  return t;
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("cannot load tokenizer: ", path.string(), " does not exist");
  fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
  fs::path json_path = fs::is_directory(path, ec) ? path / "tokenizer.json" : path;
  if (!fs::exists(json_path, ec))
    fail("no tokenizer.json in ", dir.string(),
         " (hint: pass a Hugging Face model folder that contains tokenizer.json, or the file itself)");
  std::string config;
  if (fs::exists(dir / "tokenizer_config.json", ec)) config = read_file(dir / "tokenizer_config.json");
  Tokenizer t = from_json(read_file(json_path), config, json_path.string());
  if (fs::exists(dir / "chat_template.jinja", ec)) t.impl_->p.chat_template = read_file(dir / "chat_template.jinja");
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  impl_->p.encode(text, add_special, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  return impl_->p.decode(ids.data(), ids.size(), skip_special);
}

int32_t Tokenizer::vocab_size() const { return impl_->p.size(); }

std::string Tokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= impl_->p.size())
    fail("token id ", id, " is out of range (vocabulary size ", impl_->p.size(), ")");
  return impl_->p.pieces[size_t(id)];
}

int32_t Tokenizer::piece_to_id(std::string_view piece) const {
  auto it = impl_->p.piece_ids.find(piece);
  return it == impl_->p.piece_ids.end() ? -1 : it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->p.size() && impl_->p.kinds[size_t(id)] == tok::PieceKind::Special;
}

int32_t Tokenizer::bos_id() const { return impl_->p.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->p.eos_id; }
int32_t Tokenizer::pad_id() const { return impl_->p.pad_id; }

bool Tokenizer::add_bos() const {
  const auto& v = impl_->p.prefix_ids;
  return impl_->p.bos_id >= 0 && std::find(v.begin(), v.end(), impl_->p.bos_id) != v.end();
}

bool Tokenizer::add_eos() const {
  const auto& v = impl_->p.suffix_ids;
  return impl_->p.eos_id >= 0 && std::find(v.begin(), v.end(), impl_->p.eos_id) != v.end();
}

const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }
const std::string& Tokenizer::chat_template() const { return impl_->p.chat_template; }

}  // namespace tpro
