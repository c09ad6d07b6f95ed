// Files built into the binary (web UI, demo assets), looked up by their path relative to the
// repository folder they came from ("web/index.html", "demo/sample.txt").
#pragma once
#include <string_view>
#include <utility>
#include <vector>

namespace tpro {

const std::vector<std::pair<std::string_view, std::string_view>>& embedded_files();  // generated
// The file's bytes; throws Error naming the file when it was not embedded.
std::string_view embedded_file(std::string_view path);

}  // namespace tpro
