// `tpro tokenize`: encodes text with a model's tokenizer and prints ids and pieces (to check
// what a template or dataset line becomes), or with --bench only the encode throughput.
// Does not apply chat templates; render them first and pass the result with --file.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

namespace tpro::cli {
namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool no_special = false, json = false, bench = false;
};

// Control characters and backslashes escaped so every piece stays on one line.
std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
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

// Pads to `width` characters (code points, not bytes) so multi-byte pieces stay aligned.
std::string padded(const std::string& s, size_t width) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return s + std::string(chars < width ? width - chars : 1, ' ');
}

int run(const TokenizeArgs& a) {
  std::string text = a.file.empty() ? a.text : read_file(a.file);
  auto t_load = std::chrono::steady_clock::now();
  Tokenizer tok = Tokenizer::load(a.model);
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  std::vector<int32_t> ids = tok.encode(text, !a.no_special);
  double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.bench) {  // CPU time too: on a shared machine it is the steadier figure
    double load = std::chrono::duration<double>(t0 - t_load).count();
    std::printf(
        "loaded in %.3f s; %zu bytes -> %zu tokens in %.3f s (%.3f s CPU): %.2f MB/s (%.2f MB/CPU-s), %.0f tokens/s\n",
        load, text.size(), ids.size(), secs, cpu, double(text.size()) / 1e6 / secs, double(text.size()) / 1e6 / cpu,
        double(ids.size()) / secs);
    return 0;
  }
  if (a.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok.id_to_piece(id));
    nlohmann::json out = {{"ids", ids}, {"pieces", pieces}, {"count", ids.size()}};
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%zu tokens\n%6s %8s  %s%s\n", ids.size(), "index", "id", padded("piece", 24).c_str(), "text");
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = tok.id_to_piece(ids[i]);
    std::string shown = tok.decode(std::span<const int32_t>(&ids[i], 1));
    std::string text = tok.is_special(ids[i]) ? "[special]" : shown == piece ? "" : "\"" + escaped(shown) + "\"";
    std::printf("%6zu %8d  %s%s\n", i, ids[i], padded(escaped(piece), 24).c_str(), text.c_str());
  }
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<TokenizeArgs>();
  sub->add_option("--model", a->model, "Model folder or tokenizer.json")->required();
  auto* text = sub->add_option("--text", a->text, "Text to encode");
  auto* file = sub->add_option("--file", a->file, "File whose contents to encode");
  text->excludes(file);
  sub->add_flag("--no-special", a->no_special, "Do not add BOS/EOS (special tokens written in the text still match)");
  sub->add_flag("--json", a->json, "Print {\"ids\", \"pieces\", \"count\"} as JSON");
  sub->add_flag("--bench", a->bench, "Only print the token count and encode throughput");
  return [a, text, file] {
    if (text->count() == 0 && file->count() == 0) fail("tokenize: give --text or --file");
    return run(*a);
  };
}

TPRO_COMMAND("tokenize", "Encode text with a model's tokenizer and show ids and pieces", setup);

}  // namespace
}  // namespace tpro::cli
