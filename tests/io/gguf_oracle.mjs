// An independent GGUF implementation (@huggingface/gguf, pinned in tests/js/package.json) as
// the oracle of tests/io/gguf_oracle_test.cpp, in both directions:
//   node gguf_oracle.mjs read FILE    parse FILE, print {version, tensorDataOffset, metadata, tensors}
//   node gguf_oracle.mjs write FILE   write a metadata-only GGUF with its serializer, print what it wrote
// metadata maps key -> {type, subType?, value}; BigInts print as strings. Exits non-zero (and
// the C++ test fails) when tests/js/node_modules is missing: run `npm ci --prefix tests/js`.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "js", "package.json"));
const { gguf, serializeGgufMetadata } = require("@huggingface/gguf");

const json = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));
const [mode, file] = process.argv.slice(2);

if (mode === "read") {
  const r = await gguf(path.resolve(file), { allowLocalFile: true, typedMetadata: true });
  const metadata = {};
  for (const [k, v] of Object.entries(r.typedMetadata)) {
    if (!["version", "tensor_count", "kv_count"].includes(k)) metadata[k] = v;
  }
  console.log(json({ version: r.metadata.version, tensorDataOffset: r.tensorDataOffset, metadata, tensors: r.tensorInfos }));
} else if (mode === "write") {
  // Types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64.
  const typed = {
    version: { value: 3, type: 4 },
    tensor_count: { value: 0n, type: 10 },
    kv_count: { value: 0n, type: 10 },
    "general.architecture": { value: "llama", type: 8 },
    "general.name": { value: "oracle \u00e9\u4e16", type: 8 },
    "js.u8": { value: 250, type: 0 },
    "js.i8": { value: -128, type: 1 },
    "js.u16": { value: 65535, type: 2 },
    "js.i16": { value: -2, type: 3 },
    "llama.block_count": { value: 32, type: 4 },
    "js.i32": { value: -123456, type: 5 },
    "llama.rope.freq_base": { value: 500000.0, type: 6 },
    "js.f32": { value: 0.1, type: 6 },
    "js.bool": { value: true, type: 7 },
    "js.u64": { value: 18446744073709551615n, type: 10 },
    "js.i64": { value: -9223372036854775808n, type: 11 },
    "js.f64": { value: 2.5e-300, type: 12 },
    "tokenizer.ggml.tokens": { value: ["<unk>", "<s>", "</s>", "\u2581hello"], type: 9, subType: 8 },
    "tokenizer.ggml.scores": { value: [0, -1.5, 3.25, -1e9], type: 9, subType: 6 },
    "tokenizer.ggml.token_type": { value: [2, 3, 3, 1], type: 9, subType: 5 },
    "js.bools": { value: [false, true], type: 9, subType: 7 },
    "js.u64s": { value: [1n, 2n], type: 9, subType: 10 },
  };
  typed.kv_count.value = BigInt(Object.keys(typed).length - 3);
  fs.writeFileSync(file, serializeGgufMetadata(typed, { alignment: 32 }));
  const metadata = {};
  for (const [k, v] of Object.entries(typed)) {
    if (!["version", "tensor_count", "kv_count"].includes(k)) metadata[k] = v;
  }
  console.log(json({ metadata }));
} else {
  console.error("usage: node gguf_oracle.mjs read|write FILE");
  process.exit(2);
}
