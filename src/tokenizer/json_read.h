// Reading tokenizer.json / tokenizer_config.json with nlohmann::json and precise errors:
// every message names the file, the JSON path of the value ("model.merges[12]") and what was
// expected. Internal to the tokenizer module.
#pragma once
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tpro::tok {

using Json = nlohmann::json;

// A location in a JSON document. at() is O(1): a step is chained onto its parent and the
// path text ("model.merges[12]") is only built by path() or fail(), so walking a deep
// document costs no more than its size.
class JsonAt {
 public:
  std::string origin;

  JsonAt(std::string origin, std::string path = {});
  JsonAt at(std::string_view key) const;
  JsonAt at(size_t index) const;
  std::string path() const;
  [[noreturn]] void fail(const std::string& msg) const;  // "<origin>: <path>: <msg>"

 private:
  struct Step {
    std::shared_ptr<const Step> parent;
    std::string key;     // object key (or the whole path of a root made from text)
    size_t index = 0;
    bool is_index = false;
  };
  std::shared_ptr<const Step> last_;  // null at the document root
};

// Parses text; a syntax error becomes "<origin>: invalid JSON at line L, column C (byte B): ...".
Json parse_json(std::string_view text, const std::string& origin);

// model.vocab and model.merges of a tokenizer.json, read straight into flat lists (10^5-10^6
// entries that a DOM would hold as std::map nodes); the DOM gets empty placeholders instead.
struct BulkLists {
  bool has_vocab = false, has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;       // in file order
  std::vector<std::pair<std::string, std::string>> merges;  // both serializations
  // The first malformed entry of each list: its path ("model.merges[3]") and the problem.
  std::string vocab_error_path, vocab_error, merges_error_path, merges_error;
};
Json parse_tokenizer_json(std::string_view text, const std::string& origin, BulkLists& bulk);

// obj[key] (obj must be an object); missing keys fail with "<path>.<key> is missing".
const Json& require(const Json& obj, const char* key, const JsonAt& at);
// obj[key], or nullptr when obj is not an object, the key is absent, or the value is null.
const Json* optional(const Json& obj, const char* key);
void require_object(const Json& j, const JsonAt& at);
void require_array(const Json& j, const JsonAt& at);
std::string get_string(const Json& j, const JsonAt& at);
int64_t get_int(const Json& j, const JsonAt& at);
bool get_bool(const Json& obj, const char* key, bool fallback, const JsonAt& at);  // absent/null -> fallback
// A special-token entry of tokenizer_config.json: "<s>" or {"content": "<s>", ...}; "" for null.
std::string get_token_content(const Json& j, const JsonAt& at);

}  // namespace tpro::tok
