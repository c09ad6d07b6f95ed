// Text file reading, validation and normalisation; see text_files.h.
#include "data/text_files.h"

#include <algorithm>

#include "core/error.h"
#include "core/file.h"

namespace tpro {

namespace fs = std::filesystem;

size_t utf8_invalid_at(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

int64_t utf8_length(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (uint8_t(c) & 0xC0) != 0x80;
  return n;
}

std::string line_col(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  std::string_view before = text.substr(0, offset);
  size_t line = 1 + size_t(std::count(before.begin(), before.end(), '\n'));
  size_t nl = before.rfind('\n');
  size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
  return cat("line ", line, ", column ", offset - line_start + 1);
}

std::string normalise_text(std::string_view raw, const std::string& origin) {
  size_t nul = raw.find('\0');
  if (nul != std::string_view::npos)
    fail(origin, ": looks like a binary file (NUL byte at offset ", nul,
         ") (hint: raw text must be UTF-8 .txt files)");
  size_t bad = utf8_invalid_at(raw);
  if (bad != std::string_view::npos)
    fail(origin, ": invalid UTF-8 at ", line_col(raw, bad), " (byte offset ", bad,
         ") (hint: re-save the file as UTF-8)");
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\r') {
      out.push_back(raw[i]);
    } else {
      out.push_back('\n');
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    }
  }
  return out;
}

bool natural_less(std::string_view a, std::string_view b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && digit(a[i2])) ++i2;
      while (j2 < b.size() && digit(b[j2])) ++j2;
      std::string_view x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      size_t zx = std::min(x.find_first_not_of('0'), x.size() - 1);
      size_t zy = std::min(y.find_first_not_of('0'), y.size() - 1);
      std::string_view vx = x.substr(zx), vy = y.substr(zy);  // value without leading zeros
      if (vx.size() != vy.size()) return vx.size() < vy.size();
      if (vx != vy) return vx < vy;
      if (x.size() != y.size()) return x.size() < y.size();
      i = i2, j = j2;
    } else {
      if (a[i] != b[j]) return uint8_t(a[i]) < uint8_t(b[j]);
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<fs::path> list_text_files(const fs::path& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    fail("raw text file not found: ", path.string(), " (hint: give a .txt file or a folder of .txt files)");
  if (!fs::is_directory(st)) return {path};
  std::vector<fs::path> files;
  const fs::path folder = fs::canonical(path, ec);
  if (ec) fail("cannot resolve folder ", path.string(), ": ", ec.message());
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (!e.is_regular_file() || e.path().extension() != ".txt") continue;
    // A link in the folder must not pull in a file from elsewhere (the folder is what the user
    // and `tpro serve`'s sandbox vetted): refused, never read and never silently dropped.
    std::error_code lec;
    if (e.is_symlink(lec)) {
      const fs::path target = fs::canonical(e.path(), lec);
      if (lec || !is_within(folder, target))
        fail("raw text folder ", path.string(), ": ", e.path().filename().string(), " is a symlink to ",
             lec ? fs::read_symlink(e.path(), lec).string() : target.string(),
             ", outside the folder (hint: copy the file into the folder, or name it in raw_text_file itself)");
    }
    files.push_back(e.path());
  }
  if (ec) fail("cannot list folder ", path.string(), ": ", ec.message());
  if (files.empty()) fail("folder ", path.string(), " contains no .txt files");
  std::sort(files.begin(), files.end(), [](const fs::path& x, const fs::path& y) {
    return natural_less(x.filename().string(), y.filename().string());
  });
  return files;
}

std::vector<TextDoc> read_text_source(const fs::path& path) {
  std::vector<TextDoc> docs;
  for (const fs::path& f : list_text_files(path)) {
    TextDoc d;
    d.path = f.string();
    d.text = normalise_text(read_file(f), d.path);
    docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace tpro
