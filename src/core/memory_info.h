// What the system says about memory: MemAvailable from /proc/meminfo (the kernel's estimate of
// what can be allocated without swapping, page cache it can drop included) and which address
// ranges of this process are file-backed mappings (/proc/self/maps), so that a memory plan can
// tell weights it holds in its own memory from mapped file pages the kernel already counts as
// available. Linux only; elsewhere the readers return nothing. Parsers take the text, for tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace tpro {

// MemAvailable in bytes from /proc/meminfo's text ("MemAvailable:  123456 kB"); nullopt when absent.
std::optional<size_t> parse_mem_available(std::string_view meminfo);
// MemAvailable of this machine now (nullopt when /proc/meminfo cannot be read or lacks it).
std::optional<size_t> mem_available();

struct AddressRange {
  uintptr_t begin = 0, end = 0;  // [begin, end)
};
// The file-backed ranges (inode != 0) of /proc/<pid>/maps' text, sorted; malformed lines skipped.
std::vector<AddressRange> parse_file_mappings(std::string_view maps);
// This process's file-backed ranges now.
std::vector<AddressRange> file_mappings();
// Bytes of [p, p + n) that lie outside every range (memory the process holds itself).
size_t bytes_outside(const std::vector<AddressRange>& ranges, const void* p, size_t n);

}  // namespace tpro
