// JSON helpers with file/path/expected-vs-got errors; see json_read.h.
#include "tokenizer/json_read.h"

#include <type_traits>

#include "core/error.h"

namespace tpro::tok {

JsonAt::JsonAt(std::string origin, std::string path) : origin(std::move(origin)) {
  if (!path.empty()) last_ = std::make_shared<const Step>(Step{nullptr, std::move(path)});
}

JsonAt JsonAt::at(std::string_view key) const {
  JsonAt r(origin);
  r.last_ = std::make_shared<const Step>(Step{last_, std::string(key)});
  return r;
}

JsonAt JsonAt::at(size_t index) const {
  JsonAt r(origin);
  r.last_ = std::make_shared<const Step>(Step{last_, {}, index, true});
  return r;
}

std::string JsonAt::path() const {
  std::vector<const Step*> steps;
  for (const Step* s = last_.get(); s; s = s->parent.get()) steps.push_back(s);
  // A very deep path keeps its first and last steps: "a.b[0].c...x[0].y (130 steps)".
  constexpr size_t kEnds = 6;
  const bool elide = steps.size() > 4 * kEnds;
  std::string out;
  size_t k = 0;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it, ++k) {
    if (elide && k == kEnds) out += "...";
    if (elide && k >= kEnds && k < steps.size() - kEnds) continue;
    if ((*it)->is_index) {
      out += '[';
      out += std::to_string((*it)->index);
      out += ']';
    } else {
      if (!out.empty() && !out.ends_with("...")) out += '.';
      out += (*it)->key;
    }
  }
  if (elide) out += " (" + std::to_string(steps.size()) + " steps)";
  return out;
}

void JsonAt::fail(const std::string& msg) const {
  std::string p = path();
  if (p.empty()) tpro::fail(origin, ": ", msg);
  tpro::fail(origin, ": ", p, ": ", msg);
}

namespace {

[[noreturn]] void syntax_error(std::string_view text, const std::string& origin, size_t nl_byte,
                               const std::string& what) {
  size_t byte = nl_byte > 0 ? nl_byte - 1 : 0;  // nlohmann counts from 1
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  size_t colon = what.find(": ", what.find("column"));
  std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
  tpro::fail(origin, ": invalid JSON at line ", line, ", column ", col, " (byte ", byte, "): ", reason);
}

// SAX handler: a DOM parser for everything except model.vocab / model.merges, which go to
// BulkLists. `open_` holds, per open container, its key in the parent and whether it is an object.
class BulkSax : public nlohmann::json_sax<Json> {
 public:
  BulkSax(Json& root, BulkLists& out, std::string_view text, const std::string& origin)
      : dom_(root), out_(out), text_(text), origin_(origin) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t& s) override {
    return mode_ == Mode::Dom ? dom_.number_float(v, s) : value(v);
  }
  bool string(string_t& v) override;
  bool binary(binary_t& v) override { return dom_.binary(v); }
  bool key(string_t& v) override;
  bool start_object(std::size_t n) override;
  bool end_object() override;
  bool start_array(std::size_t n) override;
  bool end_array() override;
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error(text_, origin_, pos, e.what());
  }

 private:
  enum class Mode { Dom, Vocab, Merges };
  template <typename T>
  bool value(T v);
  bool at(const char* key) const {  // the container just opened is root.model.<key>
    return open_.size() == 3 && open_[0].second && open_[1].second && open_[1].first == "model" &&
           open_[2].first == key;
  }
  void bad(const std::string& path, const std::string& msg) {
    std::string& error = mode_ == Mode::Vocab ? out_.vocab_error : out_.merges_error;
    if (error.empty()) (mode_ == Mode::Vocab ? out_.vocab_error_path : out_.merges_error_path) = path, error = msg;
  }
  std::string merge_path() const { return "model.merges[" + std::to_string(out_.merges.size() + legacy_bad_) + "]"; }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  BulkLists& out_;
  std::string_view text_;
  const std::string& origin_;
  std::vector<std::pair<std::string, bool>> open_;
  std::string key_;
  Mode mode_ = Mode::Dom;
  int depth_ = 0;  // containers opened inside the captured one
  std::vector<std::string> pair_;
  size_t legacy_bad_ = 0;
};

template <typename T>
bool BulkSax::value(T v) {
  if (mode_ == Mode::Dom) {
    if constexpr (std::is_same_v<T, std::nullptr_t>)
      return dom_.null();
    else if constexpr (std::is_same_v<T, bool>)
      return dom_.boolean(v);
    else if constexpr (std::is_same_v<T, number_integer_t>)
      return dom_.number_integer(v);
    else if constexpr (std::is_same_v<T, number_unsigned_t>)
      return dom_.number_unsigned(v);
    else
      return dom_.number_float(v, "");
  }
  if (mode_ == Mode::Vocab && depth_ == 0) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      out_.vocab.emplace_back(key_, int64_t(v));
    } else {
      bad("model.vocab." + key_, std::string("expected an integer, got ") + Json(v).type_name());
    }
  } else if (mode_ == Mode::Merges) {
    bad(merge_path(), std::string("expected a merge string or [left, right], got ") + Json(v).type_name());
  }
  return true;
}

bool BulkSax::string(string_t& v) {
  if (mode_ == Mode::Dom) return dom_.string(v);
  if (mode_ == Mode::Vocab) {
    if (depth_ == 0) bad("model.vocab." + key_, "expected an integer, got string");
  } else if (depth_ == 0) {  // legacy "a b"
    size_t sp = v.find(' ');
    if (sp == std::string::npos) {
      bad(merge_path(), "expected \"left right\", got \"" + v + "\" (no space)");
      ++legacy_bad_;
    } else {
      out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
    }
  } else if (depth_ == 1) {
    pair_.push_back(std::move(v));
  } else {
    bad(merge_path(), "expected [left, right] of strings");
  }
  return true;
}

bool BulkSax::key(string_t& v) {
  key_ = v;
  return mode_ == Mode::Dom ? dom_.key(v) : true;
}

bool BulkSax::start_object(std::size_t n) {
  if (mode_ != Mode::Dom) {
    ++depth_;
    bad(mode_ == Mode::Vocab ? "model.vocab." + key_ : merge_path(), "unexpected object");
    return true;
  }
  open_.emplace_back(open_.empty() || !open_.back().second ? std::string() : key_, true);
  if (at("vocab")) {
    mode_ = Mode::Vocab;
    out_.has_vocab = true;
    return dom_.start_object(0);
  }
  return dom_.start_object(n);
}

bool BulkSax::end_object() {
  if (mode_ != Mode::Dom && depth_ > 0) return --depth_, true;
  mode_ = Mode::Dom;
  open_.pop_back();
  return dom_.end_object();
}

bool BulkSax::start_array(std::size_t n) {
  if (mode_ == Mode::Merges) {
    if (++depth_ == 1) pair_.clear();
    return true;
  }
  if (mode_ == Mode::Vocab) {
    ++depth_;
    bad("model.vocab." + key_, "expected an integer, got array");
    return true;
  }
  open_.emplace_back(open_.empty() || !open_.back().second ? std::string() : key_, false);
  if (at("merges")) {
    mode_ = Mode::Merges;
    out_.has_merges = true;
    return dom_.start_array(0);
  }
  return dom_.start_array(n);
}

bool BulkSax::end_array() {
  if (mode_ == Mode::Merges && depth_ > 0) {
    if (depth_-- == 1) {
      if (pair_.size() == 2) {
        out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      } else {
        bad(merge_path(), "expected [left, right], got an array of " + std::to_string(pair_.size()));
        ++legacy_bad_;
      }
    }
    return true;
  }
  if (mode_ == Mode::Vocab && depth_ > 0) return --depth_, true;
  mode_ = Mode::Dom;
  open_.pop_back();
  return dom_.end_array();
}

}  // namespace

Json parse_json(std::string_view text, const std::string& origin) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    syntax_error(text, origin, e.byte, e.what());
  } catch (const Json::out_of_range& e) {  // a number beyond double, "1e400": no position given
    tpro::fail(origin, ": invalid JSON: ", e.what());
  }
}

Json parse_tokenizer_json(std::string_view text, const std::string& origin, BulkLists& bulk) {
  Json root;
  BulkSax sax(root, bulk, text, origin);
  Json::sax_parse(text.begin(), text.end(), &sax);
  return root;
}

const Json& require(const Json& obj, const char* key, const JsonAt& at) {
  require_object(obj, at);
  auto it = obj.find(key);
  if (it == obj.end()) at.at(key).fail("is missing");
  return *it;
}

const Json* optional(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

void require_object(const Json& j, const JsonAt& at) {
  if (!j.is_object()) at.fail(std::string("expected an object, got ") + j.type_name());
}

void require_array(const Json& j, const JsonAt& at) {
  if (!j.is_array()) at.fail(std::string("expected an array, got ") + j.type_name());
}

std::string get_string(const Json& j, const JsonAt& at) {
  if (!j.is_string()) at.fail(std::string("expected a string, got ") + j.type_name());
  return j.get<std::string>();
}

int64_t get_int(const Json& j, const JsonAt& at) {
  if (!j.is_number_integer()) at.fail(std::string("expected an integer, got ") + j.type_name());
  return j.get<int64_t>();
}

bool get_bool(const Json& obj, const char* key, bool fallback, const JsonAt& at) {
  const Json* v = optional(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean()) at.at(key).fail(std::string("expected true or false, got ") + v->type_name());
  return v->get<bool>();
}

std::string get_token_content(const Json& j, const JsonAt& at) {
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) return get_string(require(j, "content", at), at.at("content"));
  at.fail(std::string("expected a token string or {\"content\": ...}, got ") + j.type_name());
}

}  // namespace tpro::tok
