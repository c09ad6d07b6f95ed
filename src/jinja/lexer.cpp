// Jinja lexer (see lexer.h). Mirrors jinja2/lexer.py's state machine: the root rule
// finds the next {{ / {% / {# (or {% raw %}), applies "-" stripping or lstrip_blocks to the
// text before it, then tag tokens are read until the end delimiter, which only counts while
// brackets are balanced; block and comment ends eat one newline (trim_blocks).
#include "jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <functional>
#include <optional>
#include <tuple>

#include "jinja/error.h"
#include "jinja/text.h"

namespace tpro::jinja {

const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::Data: return "template data";
    case TokenType::VarBegin: return "'{{'";
    case TokenType::VarEnd: return "end of print statement";
    case TokenType::BlockBegin: return "'{%'";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::Name: return "name";
    case TokenType::String: return "string";
    case TokenType::Int: return "integer";
    case TokenType::Float: return "float";
    case TokenType::Op: return "operator";
    case TokenType::End: return "end of template";
  }
  return "?";
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Newlines become "\n" and one trailing newline is dropped (keep_trailing_newline=False).
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_.push_back(source[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    // Room for a token per two bytes (up to 2^20 tokens), so a big template does not regrow
    // and copy its tokens; pages of the reserve stay untouched until used.
    out_.reserve(std::min<size_t>(src_.size() / 2 + 1, size_t{1} << 20));
    while (pos_ < src_.size()) root_step();
    push(TokenType::End, "", src_.size());
    return std::move(out_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
  std::vector<char> brackets_;  // expected closers while inside a tag
  size_t pos_ = 0;
  mutable size_t memo_line_ = 0, memo_pos_ = 0;  // where()'s last answer
  mutable int memo_col_ = 1;
  bool line_starting_ = true;  // the last consumed match ended with "\n" (or nothing yet)

  // Tokens come in source order, so the column is counted on from the previous token's when
  // both are on one line: a long one-line template lexes in linear time.
  std::pair<int, int> where(size_t pos) const {
    size_t line = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin();
    size_t from = line_starts_[line - 1];
    int col = 1;
    if (line == memo_line_ && pos >= memo_pos_) from = memo_pos_, col = memo_col_;
    for (size_t i = from; i < pos && i < src_.size(); ++i) {
      if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++col;
    }
    memo_line_ = line, memo_pos_ = pos, memo_col_ = col;
    return {static_cast<int>(line), col};
  }

  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const {
    auto [line, col] = where(pos);
    throw JinjaError(msg, line, col);
  }

  Token& push(TokenType type, std::string text, size_t pos) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    std::tie(t.line, t.col) = where(pos);
    out_.push_back(std::move(t));
    return out_.back();
  }

  bool starts_with(size_t pos, std::string_view s) const { return src_.compare(pos, s.size(), s) == 0; }

  // Length of the Unicode whitespace run at pos (Python's \s).
  size_t whitespace_len(size_t pos) const {
    size_t p = pos;
    while (p < src_.size()) {
      unsigned char c = src_[p];
      size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      std::u32string cp = utf8_decode(std::string_view(src_).substr(p, n));
      if (cp.size() != 1 || !py_isspace(cp[0])) break;
      p += n;
    }
    return p - pos;
  }

  // Emits the text before a tag after whitespace control: '-' strips all trailing
  // whitespace; otherwise lstrip_blocks removes spaces before a block/comment tag that
  // starts its line.
  void emit_text(size_t begin, size_t end, char sign, bool lstrip_applies) {
    std::string text = src_.substr(begin, end - begin);
    if (sign == '-') {
      text = py_strip(text, std::nullopt, false, true);
    } else if (sign != '+' && lstrip_applies) {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size()) {
        std::string_view rest = std::string_view(text).substr(l_pos);
        std::u32string u = utf8_decode(rest);
        bool all_ws = true;
        for (char32_t c : u) all_ws = all_ws && py_isspace(c);
        if (all_ws) text.resize(l_pos);
      }
    }
    if (!text.empty()) push(TokenType::Data, std::move(text), begin);
  }

  // Consumes an end delimiter variant at pos_: "+X" keeps what follows, "-X" eats all
  // whitespace, plain "X" eats one newline when `trim` (block and comment ends).
  void consume_end(std::string_view delim, bool trim) {
    size_t start = pos_;
    if (src_[pos_] == '+') {
      pos_ += 1 + delim.size();
    } else if (src_[pos_] == '-') {
      pos_ += 1 + delim.size();
      pos_ += whitespace_len(pos_);
    } else {
      pos_ += delim.size();
      if (trim && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
    }
    line_starting_ = pos_ > start && src_[pos_ - 1] == '\n';
  }

  // Matches {%[-+]?\s*raw\s*(-%}|%}) at pos; returns the position after it.
  std::optional<size_t> match_raw(size_t pos, const char* word, bool* minus_end) const {
    size_t p = pos + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p += whitespace_len(p);
    std::string_view w(word);
    if (!starts_with(p, w) || (p + w.size() < src_.size() && is_name_char(src_[p + w.size()]))) return std::nullopt;
    p += w.size();
    p += whitespace_len(p);
    *minus_end = starts_with(p, "-%}");
    if (*minus_end) return p;
    if (starts_with(p, "%}") || (starts_with(p, "+%}") && w == "endraw")) return p;
    return std::nullopt;
  }

  void root_step() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        emit_text(pos_, src_.size(), 0, false);
        pos_ = src_.size();
        return;
      }
      char k = src_[tag + 1];
      if (k == '{' || k == '%' || k == '#') break;
      ++tag;
    }
    char kind = src_[tag + 1];
    char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
    bool minus_end = false;
    std::optional<size_t> raw = kind == '%' ? match_raw(tag, "raw", &minus_end) : std::nullopt;
    emit_text(pos_, tag, sign, kind != '{');
    if (raw) {
      pos_ = *raw;
      consume_end("%}", false);
      lex_raw(tag);
    } else if (kind == '#') {
      lex_comment(tag);
    } else {
      lex_tag(tag, kind);
    }
  }

  void lex_comment(size_t tag) {
    size_t start = tag + 2 + ((src_.size() > tag + 2 && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) ? 1 : 0);
    size_t end = src_.find("#}", start);
    if (end == std::string::npos) fail_at(tag, "missing end of comment tag '#}'");
    pos_ = (end > start && (src_[end - 1] == '-' || src_[end - 1] == '+')) ? end - 1 : end;
    consume_end("#}", true);
  }

  void lex_raw(size_t tag) {
    size_t body = pos_;
    for (size_t p = src_.find("{%", body); p != std::string::npos; p = src_.find("{%", p + 1)) {
      bool minus_end = false;
      std::optional<size_t> end = match_raw(p, "endraw", &minus_end);
      if (!end) continue;
      char sign = src_[p + 2] == '-' || src_[p + 2] == '+' ? src_[p + 2] : 0;
      emit_text(body, p, sign, true);
      pos_ = *end;
      consume_end("%}", true);
      return;
    }
    fail_at(tag, "missing end of raw directive '{% endraw %}'");
  }

  void lex_tag(size_t tag, char kind) {
    bool block = kind == '%';
    push(block ? TokenType::BlockBegin : TokenType::VarBegin, block ? "{%" : "{{", tag);
    pos_ = tag + 2 + ((src_.size() > tag + 2 && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) ? 1 : 0);
    std::string_view delim = block ? "%}" : "}}";
    brackets_.clear();
    while (true) {
      pos_ += whitespace_len(pos_);
      if (pos_ >= src_.size()) {
        fail_at(tag, cat("unexpected end of template, expected ", block ? "'%}'" : "'}}'", " to close the tag"));
      }
      if (brackets_.empty()) {
        bool plus = block && starts_with(pos_, "+%}");
        bool minus = starts_with(pos_, "-") && starts_with(pos_ + 1, delim);
        if (plus || minus || starts_with(pos_, delim)) {
          push(block ? TokenType::BlockEnd : TokenType::VarEnd, std::string(delim), pos_);
          consume_end(delim, block);
          return;
        }
      }
      lex_token();
    }
  }

  void lex_token() {
    char c = src_[pos_];
    bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
    if (is_digit(c)) return lex_number(after_dot);
    if (is_name_start(c)) {
      size_t b = pos_;
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      push(TokenType::Name, src_.substr(b, pos_ - b), b);
      return;
    }
    if (c == '\'' || c == '"') return lex_string();
    lex_operator();
  }

  void lex_number(bool after_dot);
  void lex_string();
  void lex_operator();
};

// Digits with optional single underscores between them: (\d+_)*\d+
size_t digits_len(const std::string& s, size_t p) {
  size_t b = p;
  while (p < s.size() && is_digit(s[p])) {
    ++p;
    if (p + 1 < s.size() && s[p] == '_' && is_digit(s[p + 1])) ++p;
  }
  return p - b;
}

void Lexer::lex_number(bool after_dot) {
  size_t b = pos_;
  size_t p = pos_ + digits_len(src_, pos_);
  bool is_float = false;
  if (!after_dot) {
    if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      p += 1 + digits_len(src_, p + 1);
      is_float = true;
    }
    if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        p = q + digits_len(src_, q);
        is_float = true;
      }
    }
  }
  std::string text;
  int base = 10;
  if (!is_float && src_[b] == '0' && p == b + 1 && p + 1 < src_.size()) {
    char x = static_cast<char>(src_[p] | 0x20);
    base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 10;
    if (base != 10) {
      p += 1;
      while (p < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
    }
  }
  for (size_t i = b; i < p; ++i) {
    if (src_[i] != '_') text.push_back(src_[i]);
  }
  pos_ = p;
  if (is_float) {
    push(TokenType::Float, text, b).float_value = std::stod(text);
    return;
  }
  std::string digits = base == 10 ? text : text.substr(2);
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno == ERANGE) fail_at(b, "integer literal " + text + " is too large (tpro's Jinja uses 64-bit integers)");
  if (digits.empty() || *end != '\0') fail_at(b, "invalid integer literal " + text);
  push(TokenType::Int, text, b).int_value = v;
}

// Python "unicode-escape" decoding of a string literal body (what Jinja applies).
std::string unescape_python(std::string_view body, const std::function<void(const std::string&)>& fail) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': case 'u': case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        std::string hex(body.substr(i + 1, n));
        bool ok = hex.size() == n;
        for (char h : hex) ok = ok && std::isxdigit(static_cast<unsigned char>(h));
        if (!ok) fail(cat("truncated \\", e, " escape in string literal"));
        unsigned long cp = std::stoul(hex, nullptr, 16);
        if (cp > 0x10FFFF) fail("illegal Unicode character in string literal");
        utf8_append(out, static_cast<char32_t>(cp));
        i += n;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          unsigned cp = 0;
          size_t k = 0;
          for (; k < 3 && i + k < body.size() && body[i + k] >= '0' && body[i + k] <= '7'; ++k) {
            cp = cp * 8 + (body[i + k] - '0');
          }
          i += k - 1;
          utf8_append(out, cp);
        } else if (e == 'N') {
          fail("\\N{...} escapes are not supported in string literals");
        } else {
          out.push_back('\\');  // unknown escapes stay as written, as in Python
          out.push_back(e);
        }
    }
  }
  return out;
}

void Lexer::lex_string() {
  size_t b = pos_;
  char q = src_[pos_];
  size_t p = pos_ + 1;
  while (p < src_.size() && src_[p] != q) p += src_[p] == '\\' ? 2 : 1;
  if (p >= src_.size()) fail_at(b, "unterminated string literal");
  std::string_view body = std::string_view(src_).substr(b + 1, p - b - 1);
  pos_ = p + 1;
  push(TokenType::String, unescape_python(body, [&](const std::string& m) { fail_at(b, m); }), b);
}

void Lexer::lex_operator() {
  static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                               "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
  for (const char* op : kOps) {
    if (!starts_with(pos_, op)) continue;
    std::string o(op);
    if (o == "(" || o == "[" || o == "{") {
      brackets_.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
    } else if (o == ")" || o == "]" || o == "}") {
      if (brackets_.empty()) fail_at(pos_, "unexpected '" + o + "'");
      char want = brackets_.back();
      brackets_.pop_back();
      if (want != o[0]) fail_at(pos_, cat("unexpected '", o, "', expected '", want, "'"));
    }
    push(TokenType::Op, o, pos_);
    pos_ += o.size();
    return;
  }
  unsigned char c = src_[pos_];
  std::string shown = c < 0x20 || c >= 0x80 ? cat("byte 0x", std::hex, static_cast<int>(c)) : std::string(1, c);
  fail_at(pos_, "unexpected character '" + shown + "' in tag");
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace tpro::jinja
