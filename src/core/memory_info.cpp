// /proc/meminfo and /proc/self/maps readers; see memory_info.h.
#include "core/memory_info.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace tpro {

namespace {
constexpr size_t kMaxProcText = size_t(64) << 20;  // bounds a maps file of a huge process

std::string read_proc(const char* path) {
  std::ifstream f(path);
  if (!f) return "";
  std::string out, line;
  while (std::getline(f, line) && out.size() < kMaxProcText) out += line + "\n";
  return out;
}

std::string_view next_field(std::string_view& s) {
  const size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return s = {}, std::string_view{};
  s.remove_prefix(b);
  const size_t e = std::min(s.find(' '), s.size());
  const std::string_view f = s.substr(0, e);
  s.remove_prefix(e);
  return f;
}

bool parse_hex(std::string_view s, uintptr_t* out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
}  // namespace

std::optional<size_t> parse_mem_available(std::string_view meminfo) {
  constexpr std::string_view key = "MemAvailable:";
  size_t at = 0;
  while ((at = meminfo.find(key, at)) != std::string_view::npos) {
    if (at == 0 || meminfo[at - 1] == '\n') break;
    at += key.size();
  }
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = meminfo.substr(at + key.size());
  rest = rest.substr(0, rest.find('\n'));
  const std::string_view num = next_field(rest), unit = next_field(rest);
  size_t kb = 0;
  const auto r = std::from_chars(num.data(), num.data() + num.size(), kb);
  if (r.ec != std::errc() || r.ptr != num.data() + num.size() || unit != "kB") return std::nullopt;
  if (kb > SIZE_MAX / 1024) return std::nullopt;
  return kb * 1024;
}

std::optional<size_t> mem_available() { return parse_mem_available(read_proc("/proc/meminfo")); }

std::vector<AddressRange> parse_file_mappings(std::string_view maps) {
  std::vector<AddressRange> out;
  while (!maps.empty()) {
    const size_t nl = std::min(maps.find('\n'), maps.size());
    std::string_view line = maps.substr(0, nl);
    maps.remove_prefix(std::min(nl + 1, maps.size()));
    // "begin-end perms offset dev inode [path]"
    const std::string_view range = next_field(line);
    next_field(line);  // perms
    next_field(line);  // offset
    next_field(line);  // dev
    const std::string_view inode = next_field(line);
    const size_t dash = range.find('-');
    AddressRange r;
    if (dash == std::string_view::npos || !parse_hex(range.substr(0, dash), &r.begin) ||
        !parse_hex(range.substr(dash + 1), &r.end) || r.end <= r.begin || inode.empty() || inode == "0")
      continue;
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const AddressRange& a, const AddressRange& b) { return a.begin < b.begin; });
  return out;
}

std::vector<AddressRange> file_mappings() { return parse_file_mappings(read_proc("/proc/self/maps")); }

size_t bytes_outside(const std::vector<AddressRange>& ranges, const void* p, size_t n) {
  const uintptr_t a = uintptr_t(p), b = a + n;
  size_t inside = 0;
  for (const AddressRange& r : ranges) {
    if (r.end <= a) continue;
    if (r.begin >= b) break;
    inside += std::min(b, r.end) - std::max(a, r.begin);
  }
  return n - inside;
}

}  // namespace tpro
