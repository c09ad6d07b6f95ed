// io/gguf against an independent implementation (@huggingface/gguf via gguf_oracle.mjs):
// files tpro writes parse there to the same typed metadata, tensor infos and data offset, and
// files its serializer writes parse here to the same values. Fails (does not skip) when
// tests/js/node_modules is missing; CI runs `npm ci --prefix tests/js`.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "io/gguf.h"
#include "io/gguf_test_util.h"
#include "io/gguf_writer.h"

using namespace tpro;
using namespace tpro::test;
using nlohmann::json;

namespace {

// Runs the oracle; returns its JSON output, failing the test on any error.
json run_oracle(const std::string& mode, const fs::path& file) {
  const std::string src = TPRO_SOURCE_DIR;
  if (!fs::exists(src + "/tests/js/node_modules/@huggingface/gguf")) {
    ADD_FAILURE() << "tests/js/node_modules/@huggingface/gguf is missing (hint: npm ci --prefix tests/js)";
    return json();
  }
  const std::string cmd = "node '" + src + "/tests/io/gguf_oracle.mjs' " + mode + " '" + file.string() + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "cannot run " << cmd;
    return json();
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) {
    ADD_FAILURE() << cmd << " failed (" << status << "):\n" << out;
    return json();
  }
  return json::parse(out);
}

// A value in the oracle's JSON convention: 64-bit integers as strings, f32 widened to double.
json to_json(const GgufValue& v);

json to_json(const GgufArray& a) {
  json out = json::array();
  std::visit(
      [&](const auto& vec) {
        for (const auto& e : vec) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, GgufArray>) {
            out.push_back(to_json(e));
          } else {
            out.push_back(to_json(GgufValue(T(e))));
          }
        }
      },
      a.data);
  return out;
}

json to_json(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          return to_json(x);
        } else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
          return std::to_string(x);
        } else if constexpr (std::is_same_v<T, float>) {
          return double(x);
        } else {
          return x;
        }
      },
      v.data);
}

// The oracle writes f32 values from JS doubles; what lands in the file is their f32 rounding.
json round_f32(json v) {
  if (v.is_array()) {
    for (auto& e : v) e = round_f32(e);
    return v;
  }
  return double(float(v.get<double>()));
}

}  // namespace

TEST(GgufOracle, FilesWeWriteParseIdenticallyInHuggingfaceGguf) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("general.alignment", uint32_t(64));
  w.set("t.u8", uint8_t(7));
  w.set("t.i8", int8_t(-7));
  w.set("t.u16", uint16_t(65535));
  w.set("t.i16", int16_t(-32768));
  w.set("llama.block_count", uint32_t(22));
  w.set("t.i32", int32_t(-5));
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("t.bool", false);
  w.set("t.string", std::string("\xE2\x96\x81unicode \xF0\x9F\x98\x80"));
  w.set("t.u64", uint64_t(18446744073709551615ull));
  w.set("t.i64", int64_t(-42));
  w.set("t.f64", 0.1);
  w.set("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>", "", "\xE2\x96\x81the"});
  w.set("tokenizer.ggml.scores", std::vector<float>{0.0f, -1.25f, 1e-8f});
  w.set("t.bools", std::vector<bool>{true, false});
  w.set("t.i64s", std::vector<int64_t>{-1, 2});
  w.set("t.empty", std::vector<uint16_t>{});
  w.set("t.nested", std::vector<GgufArray>{GgufArray(std::vector<int32_t>{1, 2}), GgufArray(std::vector<int32_t>{3})});
  std::mt19937 rng(1);
  std::vector<uint8_t> a(4 * 96 * 2), b(144 * 3), c(34 * 4);
  for (auto* v : {&a, &b, &c})
    for (auto& x : *v) x = uint8_t(rng());
  w.add_tensor("token_embd.weight", GgmlType::F32, {96, 2}, a.data(), a.size());
  w.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_K, {256, 3}, b.data(), b.size());
  w.add_tensor("blk.0.attn_k.weight.lora_a", GgmlType::Q8_0, {64, 2}, c.data(), c.size());
  const fs::path p = temp_dir() / "ours.gguf";
  w.write(p);
  const GgufFile ours(p);

  const json js = run_oracle("read", p);
  ASSERT_TRUE(js.is_object());
  EXPECT_EQ(js["version"], 3);
  EXPECT_EQ(js["tensorDataOffset"], std::to_string(ours.data_offset()));
  ASSERT_EQ(js["metadata"].size(), w.metadata().size());
  for (const auto& kv : w.metadata()) {
    SCOPED_TRACE(kv.key);
    const json& e = js["metadata"][kv.key];
    EXPECT_EQ(e["type"], uint32_t(kv.value.type()));
    if (const auto* arr = std::get_if<GgufArray>(&kv.value.data)) {
      EXPECT_EQ(e["subType"], uint32_t(arr->elem_type()));
    }
    EXPECT_EQ(e["value"], to_json(kv.value));
  }
  ASSERT_EQ(js["tensors"].size(), ours.tensors().size());
  for (size_t i = 0; i < ours.tensors().size(); ++i) {
    const GgufTensor& t = ours.tensors()[i];
    const json& e = js["tensors"][i];
    EXPECT_EQ(e["name"], t.name);
    EXPECT_EQ(e["dtype"], uint32_t(t.type));
    EXPECT_EQ(e["offset"], std::to_string(t.offset));
    ASSERT_EQ(e["shape"].size(), t.ne.size());
    for (size_t j = 0; j < t.ne.size(); ++j) EXPECT_EQ(e["shape"][j], std::to_string(t.ne[j]));
  }
}

TEST(GgufOracle, FilesHuggingfaceGgufWritesParseIdenticallyHere) {
  const fs::path p = temp_dir() / "theirs.gguf";
  const json js = run_oracle("write", p);
  ASSERT_TRUE(js.is_object());
  const GgufFile f(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_TRUE(f.tensors().empty());
  ASSERT_EQ(f.metadata().size(), js["metadata"].size());
  for (const auto& [key, e] : js["metadata"].items()) {
    SCOPED_TRACE(key);
    const GgufValue* v = f.find(key);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(uint32_t(v->type()), e["type"].get<uint32_t>());
    const bool is_f32 = e["type"] == 6 || e.value("subType", 0u) == 6;
    EXPECT_EQ(to_json(*v), is_f32 ? round_f32(e["value"]) : e["value"]);
  }
  EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens")[3], "\xE2\x96\x81hello");
  EXPECT_EQ(f.get_u32("llama.block_count"), 32u);
  EXPECT_EQ(f.get_f32("llama.rope.freq_base"), 500000.0f);
}
