// Tokenizer oracle for tests/tokenizer/conformance_test.cpp: encodes every corpus text with
// @lenml/tokenizers (an independent JS port of HF tokenizers) and writes ids and decodes.
// Usage: node tokenizer_oracle.mjs <vocab> <corpus.json> <out.json>
//   <vocab> is gpt2, llama2, llama3, llama3_1, qwen3, gemma3, or llama2_metaspace (llama2 with
//   the Metaspace pre-tokenizer, prepend_scheme "first", that newer Llama/Mistral files use),
//   or a path to a folder holding tokenizer.json and tokenizer_config.json.
// Decodes use clean_up_tokenization_spaces=false: tpro decodes like the Rust `tokenizers`.
// For the corpus's "divergent" inputs it also reports its BPE model's ids for HF's pre-tokens.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

const here = path.dirname(fileURLToPath(import.meta.url));

function modelDir(name) {
  return path.join(here, "node_modules", "@lenml", `tokenizer-${name}`, "models");
}

function loadVocab(vocab) {
  const base = vocab === "llama2_metaspace" ? "llama2" : vocab;
  const dir = vocab.includes("/") ? vocab : modelDir(base);
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  if (vocab === "llama2_metaspace") {
    tokenizerJSON.normalizer = null;
    tokenizerJSON.pre_tokenizer = {
      type: "Metaspace", replacement: "\u2581", add_prefix_space: true,
      prepend_scheme: "first", split: false,
    };
  }
  return { tokenizer: TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig }), tokenizerJSON };
}

// The ByteLevel byte->char table of the loaded pre-tokenizer (null for SentencePiece vocabularies).
function findByteEncoder(preTokenizer) {
  if (!preTokenizer) return null;
  if (preTokenizer.byte_encoder) return preTokenizer.byte_encoder;
  for (const sub of preTokenizer.tokenizers ?? []) {
    const found = findByteEncoder(sub);
    if (found) return found;
  }
  return null;
}

// Ids the oracle's BPE model gives for pre-tokens chosen by hand (HF's pre-tokenization of an
// input where the oracle's own regexes disagree with HF).
function modelIds(tok, pieces) {
  const encoder = findByteEncoder(tok.pre_tokenizer);
  const words = pieces.map((p) =>
    encoder ? Array.from(new TextEncoder().encode(p), (b) => encoder[b]).join("") : p);
  return tok.model.convert_tokens_to_ids(tok.model(words));
}

function decode(tok, ids, skip) {
  if (ids.length === 0) return "";
  return tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
}

function main() {
  const [vocab, corpusPath, outPath] = process.argv.slice(2);
  if (!vocab || !corpusPath || !outPath) {
    console.error("usage: node tokenizer_oracle.mjs <vocab> <corpus.json> <out.json>");
    process.exit(2);
  }
  const { tokenizer, tokenizerJSON } = loadVocab(vocab);
  const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
  const texts = corpus.texts;
  const results = texts.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: true });
    const ids_no_special = tokenizer.encode(text, { add_special_tokens: false });
    return {
      ids, ids_no_special,
      decoded: decode(tokenizer, ids, false),
      decoded_skip_special: decode(tokenizer, ids, true),
    };
  });
  const divergent = (corpus.divergent ?? []).map((d) => {
    const pieces = d.hf_pieces?.[vocab];
    if (!pieces) return null;
    return {
      oracle_ids: tokenizer.encode(d.text, { add_special_tokens: false }),
      hf_ids: modelIds(tokenizer, pieces),
    };
  });
  const out = { vocab, results, divergent };
  if (vocab === "llama2_metaspace") out.tokenizer_json = tokenizerJSON;
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main();
