// JSON array / JSON Lines reading and format files (ours in formats/ included).
#include <gtest/gtest.h>

#include <map>

#include "data/format_file.h"
#include "data/json_rows.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ojson = nlohmann::ordered_json;

TEST(JsonRows, ArrayAndLinesGiveTheSameRows) {
  auto a = parse_json_rows(R"([{"a": "1"}, {"a": "2"}])", "x.json", false);
  auto l = parse_json_rows("{\"a\": \"1\"}\n\n{\"a\": \"2\"}\r\n", "x.jsonl", false);
  ASSERT_EQ(a.rows.size(), 2u);
  ASSERT_EQ(l.rows.size(), 2u);
  EXPECT_EQ(a.rows[1].value, l.rows[1].value);
  EXPECT_EQ(a.rows[1].where, "x.json row 2");
  EXPECT_EQ(l.rows[1].where, "x.jsonl:3");  // blank lines still count
  EXPECT_TRUE(parse_json_rows(" \n ", "e.jsonl", false).rows.empty());
}

TEST(JsonRows, MalformedLineNamesFileAndLine) {
  std::string text = "{\"a\": \"1\"}\n{\"a\": oops}\n[1, 2]\n{\"a\": \"4\"}\n";
  std::string e = error_of([&] { parse_json_rows(text, "d.jsonl", false); });
  EXPECT_NE(e.find("d.jsonl:2: invalid JSON at column"), std::string::npos) << e;
  EXPECT_NE(e.find("skip_bad_lines"), std::string::npos) << e;
  auto rows = parse_json_rows(text, "d.jsonl", true);
  EXPECT_EQ(rows.skipped, 2);  // the bad line and the array line
  ASSERT_EQ(rows.rows.size(), 2u);
  EXPECT_EQ(rows.rows[1].where, "d.jsonl:4");
  e = error_of([&] { parse_json_rows("{\"a\": 1}\n[1]\n", "d.jsonl", false); });
  EXPECT_NE(e.find("d.jsonl:2: expected a JSON object, got array"), std::string::npos) << e;
}

TEST(JsonRows, NumbersTooLargeForADoubleAreBadRows) {
  // Rows give nlohmann's message without its "[json.exception...]" prefix, as for parse errors.
  const std::string overflow = "number overflow parsing '1e400'";
  EXPECT_EQ(error_of([] { parse_json_rows("[{\"a\": 1e400}]", "b.json", false); }),
            "b.json: invalid JSON: " + overflow);
  std::string e = error_of([] { parse_json_rows("{\"a\": 1}\n{\"a\": 1e400}\n", "d.jsonl", false); });
  EXPECT_EQ(e.rfind("d.jsonl:2: invalid JSON: " + overflow + " (hint: ", 0), 0u) << e;
  EXPECT_EQ(parse_json_rows("{\"a\": 1}\n{\"a\": 1e400}\n", "d.jsonl", true).skipped, 1);
  EXPECT_EQ(error_of([] { FormatFile::parse(R"({"a": 1e400})", "f.json"); }),
            "f.json: invalid JSON: [json.exception.out_of_range.406] " + overflow);
}

TEST(JsonRows, BrokenArrayGivesLineAndColumn) {
  std::string e = error_of([&] { parse_json_rows("[\n {\"a\": 1},\n {\"a\" 2}\n]", "b.json", false); });
  EXPECT_NE(e.find("b.json: invalid JSON at line 3, column"), std::string::npos) << e;
  e = error_of([&] { parse_json_rows("[{\"a\": 1}, 5]", "b.json", false); });
  EXPECT_NE(e.find("b.json row 2: expected a JSON object, got number"), std::string::npos) << e;
}

TEST(JsonRows, FileErrors) {
  ScratchDir dir;
  std::string e = error_of([&] { read_json_rows(dir.path() / "nope.jsonl", false); });
  EXPECT_NE(e.find("dataset file not found: "), std::string::npos) << e;
  auto bin = dir.file("bin.jsonl", std::string("{\"a\": 1}\n\0\x01", 11));
  e = error_of([&] { read_json_rows(bin, false); });
  EXPECT_NE(e.find("looks like a binary file (NUL byte at offset 9)"), std::string::npos) << e;
  auto bad = dir.file("bad.jsonl", "{\"a\": \"\xff\"}\n");
  e = error_of([&] { read_json_rows(bad, false); });
  EXPECT_NE(e.find("invalid UTF-8 at line 1, column 8"), std::string::npos) << e;
}

TEST(FormatFile, FirstEntryWithEqualKeySetWins) {
  auto f = FormatFile::parse(R"({"instruction, output": "I:%instruction% O:%output%",
                                 "output,instruction": "never used",
                                 "instruction,input,output": "I:%instruction% N:%input% O:%output%"})", "f.json");
  ojson row = {{"instruction", "do"}, {"input", "  "}, {"output", "done"}, {"n", 3}};
  // "input" is blank and "n" not a string: the key set is {instruction, output}.
  EXPECT_EQ(f.render(row, "r1"), "I:do O:done");
  row["input"] = "x";
  EXPECT_EQ(f.render(row, "r1"), "I:do N:x O:done");
}

TEST(FormatFile, ValuesAreNotRescanned) {
  auto f = FormatFile::parse(R"({"a,b": "%a%|%b%|%c%|100%"})", "f.json");
  ojson row = {{"a", "%b%"}, {"b", "B"}};
  EXPECT_EQ(f.render(row, "r"), "%b%|B|%c%|100%");
}

TEST(FormatFile, NoMatchNamesRowAndKeys) {
  auto f = FormatFile::parse(R"({"instruction,output": "x"})", "alpaca.json");
  ojson row = {{"question", "q"}, {"answer", "a"}};
  std::string e = error_of([&] { f.render(row, "data.jsonl:7"); });
  EXPECT_NE(e.find("data.jsonl:7: keys {answer, question} match no entry of format alpaca.json "
                   "(entries: {instruction, output})"), std::string::npos) << e;
}

TEST(FormatFile, BadFormatFiles) {
  EXPECT_ERROR_HAS(FormatFile::parse("[1]", "f.json"), "a format file is a JSON object");
  EXPECT_ERROR_HAS(FormatFile::parse(R"({"a": 1})", "f.json"), "entry \"a\" must be a string");
  EXPECT_ERROR_HAS(FormatFile::parse(R"({" , ": "x"})", "f.json"), "names no keys");
  EXPECT_ERROR_HAS(FormatFile::load("/nonexistent/f.json"), "format file not found");
}

TEST(FormatFile, ShippedFormatsRender) {
  ojson row = {{"instruction", "INS"}, {"input", "INP"}, {"output", "OUT"}, {"system", "SYS"}};
  std::string dir = std::string(TPRO_SOURCE_DIR) + "/formats/";
  for (const char* name : {"alpaca-format.json", "alpaca-chatbot-format.json", "vicuna-format.json",
                           "chatml-format.json", "llama2-chat-format.json"}) {
    FormatFile f = FormatFile::load(dir + name);
    ojson r = row;
    if (std::string(name).find("alpaca") != std::string::npos) r.erase("system");
    std::string out = f.render(r, "row");
    EXPECT_NE(out.find("INS"), std::string::npos) << name;
    EXPECT_NE(out.find("INP"), std::string::npos) << name;
    EXPECT_EQ(out.find('%'), std::string::npos) << name << ": " << out;
    r.erase("input");
    EXPECT_EQ(f.render(r, "row").find("INP"), std::string::npos) << name;
  }
  FormatFile alpaca = FormatFile::load(dir + "alpaca-format.json");
  EXPECT_EQ(alpaca.render({{"instruction", "Add."}, {"output", "2"}}, "r"),
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction:\nAdd.\n\n### Response:\n2");
}

// Every entry of every shipped format file, rendered in full: a changed template fails here.
TEST(FormatFile, ShippedFormatsRenderExactly) {
  struct Case {
    const char* file;
    bool input, system;
    const char* text;
  };
  const std::string kAlpaca = "Below is an instruction that describes a task";
  const std::string kVicuna =
      "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
      "detailed, and polite answers to the user's questions.\n\n";
  const std::string alpaca_io = kAlpaca + ". Write a response that appropriately completes the request.\n\n"
                                "### Instruction:\nINS\n\n### Response:\nOUT";
  const std::string alpaca_iio = kAlpaca + ", paired with an input that provides further context. Write a "
                                 "response that appropriately completes the request.\n\n### Instruction:\nINS\n\n"
                                 "### Input:\nINP\n\n### Response:\nOUT";
  const std::string vicuna_io = kVicuna + "USER: INS\nASSISTANT: OUT";
  const std::string vicuna_iio = kVicuna + "USER: INS\nINP\nASSISTANT: OUT";
  const Case cases[] = {
      {"alpaca-format.json", false, false, alpaca_io.c_str()},
      {"alpaca-format.json", true, false, alpaca_iio.c_str()},
      {"alpaca-chatbot-format.json", false, false, "User: INS\nAssistant: OUT"},
      {"alpaca-chatbot-format.json", true, false, "User: INS\nINP\nAssistant: OUT"},
      {"vicuna-format.json", false, false, vicuna_io.c_str()},
      {"vicuna-format.json", true, false, vicuna_iio.c_str()},
      {"vicuna-format.json", false, true, "SYS\n\nUSER: INS\nASSISTANT: OUT"},
      {"vicuna-format.json", true, true, "SYS\n\nUSER: INS\nINP\nASSISTANT: OUT"},
      {"chatml-format.json", false, false,
       "<|im_start|>user\nINS<|im_end|>\n<|im_start|>assistant\nOUT<|im_end|>\n"},
      {"chatml-format.json", true, false,
       "<|im_start|>user\nINS\n\nINP<|im_end|>\n<|im_start|>assistant\nOUT<|im_end|>\n"},
      {"chatml-format.json", false, true,
       "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nINS<|im_end|>\n<|im_start|>assistant\nOUT<|im_end|>\n"},
      {"chatml-format.json", true, true,
       "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nINS\n\nINP<|im_end|>\n<|im_start|>assistant\nOUT"
       "<|im_end|>\n"},
      {"llama2-chat-format.json", false, false, "[INST] INS [/INST] OUT"},
      {"llama2-chat-format.json", true, false, "[INST] INS\n\nINP [/INST] OUT"},
      {"llama2-chat-format.json", false, true, "[INST] <<SYS>>\nSYS\n<</SYS>>\n\nINS [/INST] OUT"},
      {"llama2-chat-format.json", true, true, "[INST] <<SYS>>\nSYS\n<</SYS>>\n\nINS\n\nINP [/INST] OUT"},
  };
  const std::filesystem::path dir = std::filesystem::path(TPRO_SOURCE_DIR) / "formats";
  std::map<std::string, size_t> per_file;
  for (const Case& c : cases) {
    ojson row = {{"system", "SYS"}, {"instruction", "INS"}, {"input", "INP"}, {"output", "OUT"}};
    if (!c.input) row.erase("input");
    if (!c.system) row.erase("system");
    EXPECT_EQ(FormatFile::load(dir / c.file).render(row, "row"), c.text)
        << c.file << " input=" << c.input << " system=" << c.system;
    ++per_file[c.file];
  }
  // The table covers every shipped file and every entry of each.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    ASSERT_TRUE(per_file.count(name)) << name << " has no exact-render case";
    EXPECT_EQ(FormatFile::load(e.path()).entries().size(), per_file[name]) << name;
  }
}
