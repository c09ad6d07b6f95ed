// Built-in chat templates for tokenizers that ship none (base models): ChatML, Alpaca,
// Llama-2 and Vicuna v1.1, written as Jinja for the same renderer as a model's own template.
// chat_template_file takes one of these names or a path to a .jinja file.
#pragma once
#include <string>
#include <string_view>

namespace tpro {

// The template named `name` (case-insensitive: chatml, alpaca, llama-2 or llama2, vicuna), or
// null when `name` is not a built-in (then it is a file path).
const std::string* builtin_chat_template(std::string_view name);
// "chatml, alpaca, llama-2, vicuna", for hints.
const char* builtin_chat_template_names();

}  // namespace tpro
