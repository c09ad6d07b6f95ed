// UTF-8 and Unicode helpers for the tokenizers: decoding, lossy repair with U+FFFD (maximal
// subparts, as Rust's from_utf8_lossy and the WHATWG decoder), White_Space, NFC/NFD, and the
// GPT-2 byte <-> unicode map. No case mapping or NFKC: no supported vocabulary needs them.
// Reference: Unicode Standard ch. 3.9 (U+FFFD substitution) and UAX #15 (normalization).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tpro::tok {

// Length of the UTF-8 sequence that starts with `lead` (1 for bytes that cannot start one).
inline int utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] and advances i. `s` should be valid UTF-8; a sequence cut off
// by the end of `s` is taken byte by byte instead of read past the end (a GGUF vocabulary piece
// can hold any bytes: found by fuzz/fuzz_gguf through the Strip decoder).
inline uint32_t next_codepoint(std::string_view s, size_t& i) {
  uint8_t c = uint8_t(s[i]);
  int n = utf8_seq_len(c);
  if (size_t(n) > s.size() - i) n = 1;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[i + size_t(k)]) & 0x3Fu);
  i += size_t(n);
  return cp;
}

void append_utf8(std::string& out, uint32_t cp);
bool utf8_valid(std::string_view s);
// Replaces each maximal ill-formed subpart by U+FFFD; valid input is returned unchanged.
std::string utf8_lossy(std::string_view bytes);
std::vector<uint32_t> to_codepoints(std::string_view s);

// Rust's char::is_whitespace (the White_Space property), used by strip/lstrip/rstrip.
bool is_whitespace(uint32_t cp);

std::string nfc(std::string_view s);
std::string nfd(std::string_view s);
const char* unicode_version();

// GPT-2 byte-level alphabet: each byte maps to one printable code point (space -> U+0120 'Ġ').
const std::array<std::string, 256>& byte_to_unicode();
// The byte a byte-level character stands for, or -1 when cp is not in the alphabet.
int unicode_to_byte(uint32_t cp);
// Maps every byte of `bytes` to its byte-level character.
std::string byte_level_encode(std::string_view bytes);

}  // namespace tpro::tok
