// Helpers shared by the libFuzzer harnesses: a per-process scratch folder (loaders take paths),
// splitting one fuzz input into several files at a separator line, and the tiny model the
// adapter and checkpoint harnesses load against. A harness catches tpro::Error (the expected
// outcome for bad input); any other exception escapes, aborts, and libFuzzer reports it.
// Seeds: fuzz/make_seeds.cpp; how to run: scripts/fuzz.sh; results: docs/RELIABILITY.md.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "model/config.h"

namespace tpro::fuzz {

// Separates the files of a multi-file input (an adapter folder, a checkpoint). libFuzzer sees
// the memmem() below and learns the separator from it; seeds use it too.
inline constexpr std::string_view kFileSeparator = "\n=====tpro-fuzz-file=====\n";

// The parts of data between separators, at most max_parts (the last part keeps the rest).
inline std::vector<std::string_view> split_files(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string_view> parts;
  const char* p = reinterpret_cast<const char*>(data);
  const char* end = p + size;
  while (parts.size() + 1 < max_parts) {
    const void* hit = memmem(p, size_t(end - p), kFileSeparator.data(), kFileSeparator.size());
    if (!hit) break;
    const char* h = static_cast<const char*>(hit);
    parts.emplace_back(p, size_t(h - p));
    p = h + kFileSeparator.size();
  }
  parts.emplace_back(p, size_t(end - p));
  return parts;
}

// Joins parts with the separator (the seed generator's inverse of split_files).
inline std::string join_files(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += kFileSeparator;
    out += parts[i];
  }
  return out;
}

// A folder of this process, created on first use and removed at exit: /tmp/tpro-fuzz-<pid>.
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("tpro-fuzz-" + std::to_string(getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("tpro-fuzz-" + std::to_string(getpid())), ec);
    });
    return d;
  }();
  return dir;
}

// Writes bytes (plain write: the loaders are under test, not the writer). Removes the old file
// first: ext4 flushes a file truncated and rewritten on close, which would cost milliseconds.
inline void put_file(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) std::abort();  // the scratch folder itself failing is not a finding
}

// A fresh, empty sub-folder of the scratch folder.
inline fs::path fresh_dir(const std::string& name) {
  fs::path d = scratch_dir() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The expected outcome of bad input. With TPRO_FUZZ_VERBOSE set, prints the message (to check
// that a seed loads: `TPRO_FUZZ_VERBOSE=1 build-fuzz/fuzz/fuzz_gguf fuzz/corpus/gguf/*`).
inline void expected(const Error& e) {
  static const bool verbose = std::getenv("TPRO_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "tpro::Error: %s\n", e.what());
}

// The model the adapter and checkpoint harnesses (and their seeds) use: Llama with GQA, one
// layer, every dimension small so seeds stay a few KB.
inline LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 16;
  c.n_embd = 8;
  c.n_ff = 16;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 4;
  c.max_position = 64;
  c.tie_word_embeddings = true;
  return c;
}

}  // namespace tpro::fuzz
