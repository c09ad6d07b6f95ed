// Reading users' text files: one .txt or a folder of .txt in natural order (file2 < file10),
// checked at the boundary (missing, binary, invalid UTF-8 each give their own message) and
// normalised (UTF-8 BOM dropped, CRLF and lone CR turned into LF, like Python's universal
// newlines that Training PRO reads with). UTF-8 helpers the slicer needs live here too.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tpro {

struct TextDoc {
  std::string path;  // as given, for messages
  std::string text;  // normalised
};

// Validates and normalises raw file bytes; `origin` names the file in errors.
std::string normalise_text(std::string_view raw, const std::string& origin);

// The .txt files a raw_text_file option names: the file itself, or the folder's *.txt
// (not recursive) in natural order. Throws when missing, when a folder has none, and when a
// .txt in the folder is a symlink that leads outside it (named in the message).
std::vector<std::filesystem::path> list_text_files(const std::filesystem::path& path);

// list_text_files + read + normalise_text.
std::vector<TextDoc> read_text_source(const std::filesystem::path& path);

// Natural order: digit runs compare by value ("a2" < "a10"), other runs bytewise.
bool natural_less(std::string_view a, std::string_view b);

// Byte offset of the first invalid UTF-8 sequence, or npos.
size_t utf8_invalid_at(std::string_view s);
// Number of code points (what Python's len() counts); s must be valid UTF-8.
int64_t utf8_length(std::string_view s);
// True when byte i does not start inside a multi-byte sequence.
inline bool utf8_boundary(std::string_view s, size_t i) {
  return i >= s.size() || (uint8_t(s[i]) & 0xC0) != 0x80;
}
// "line L, column C" (1-based, columns in bytes) of a byte offset.
std::string line_col(std::string_view text, size_t offset);

// ASCII whitespace as str.strip() sees it in practice: space, \t, \n, \r, \v, \f.
inline bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace tpro
