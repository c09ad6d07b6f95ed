// Python `str` semantics for the Jinja interpreter over UTF-8 bytes: code-point length and
// slicing, Unicode whitespace (str.isspace), case mapping, split/strip/splitlines, title,
// repr() quoting and float repr (shortest round-trip, as CPython prints floats).
// Case mapping is one code point to one (glibc C.UTF-8 tables); Python's multi-character
// special casings (e.g. 'ß'.upper() == 'SS') are deliberately not reproduced.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tpro::jinja {

// Invalid UTF-8 bytes decode to U+DC80+byte and encode back to the same byte (Python's
// "surrogateescape"), so decoding and re-encoding never changes the text.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);
size_t utf8_length(std::string_view s);

bool py_isspace(char32_t c);
bool py_isalpha(char32_t c);
bool py_isdigit(char32_t c);
bool py_isupper(char32_t c);
bool py_islower(char32_t c);
char32_t py_toupper(char32_t c);
char32_t py_tolower(char32_t c);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);  // first upper, rest lower
std::string py_str_title(std::string_view s);   // str.title(): upper after any uncased char
std::string py_swapcase(std::string_view s);

// str.strip/lstrip/rstrip: `chars` unset strips Unicode whitespace, else any listed code point.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit: unset `sep` splits on whitespace runs and drops empty ends.
// Throws JinjaError for an empty separator.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string py_replace(std::string_view s, std::string_view old_s, std::string_view new_s, int64_t count);
// str.find / str.rfind (code-point index, -1 when absent) and str.count.
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);
int64_t py_count(std::string_view s, std::string_view sub);

std::string py_str_repr(std::string_view s);  // 'it\'s' -> "it's", newlines as \n
std::string py_float_repr(double d);         // 1.0, 1e-05, 1.2345678901234567e+20, inf, nan

}  // namespace tpro::jinja
