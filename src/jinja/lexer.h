// Jinja lexer with the settings transformers renders chat templates with: trim_blocks and
// lstrip_blocks on, keep_trailing_newline off, newlines normalised to "\n". Handles {%- -%},
// {%+ +%}, comments, {% raw %}, and Python string-literal escapes, reproducing
// jinja2/lexer.py's whitespace rules exactly. Line statements and custom delimiters are not
// supported (transformers uses neither).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tpro::jinja {

enum class TokenType : uint8_t {
  Data,        // template text, whitespace control already applied
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // text holds the decoded literal
  Int,
  Float,
  Op,          // + - * / // % ** ~ == != < > <= >= = . , : | ( ) [ ] { } ;
  End,         // end of template
};

struct Token {
  TokenType type = TokenType::End;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1, col = 1;  // 1-based, in the template source
};

// Throws JinjaError (located) on unterminated tags, comments, raw blocks and strings, bad
// escapes and unbalanced brackets.
std::vector<Token> tokenize(std::string_view source);

const char* token_type_name(TokenType t);

}  // namespace tpro::jinja
