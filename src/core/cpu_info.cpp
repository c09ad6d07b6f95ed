// Physical cores and the default thread count; see cpu_info.h.
#include "core/cpu_info.h"

#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace tpro {

namespace {
// The value of a "key\t: value" line, or nullptr-like empty when the line has another key.
bool field(std::string_view line, std::string_view key, std::string_view* value) {
  if (line.substr(0, key.size()) != key) return false;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view name = line.substr(0, colon);
  if (name.find_last_not_of(" \t") + 1 != key.size()) return false;  // "core id" is not "core ids"
  *value = line.substr(colon + 1);
  const size_t b = value->find_first_not_of(" \t");
  *value = b == std::string_view::npos ? std::string_view{} : value->substr(b);
  return true;
}
}  // namespace

int64_t parse_physical_cores(std::string_view cpuinfo) {
  std::set<std::pair<std::string, std::string>> cores;
  int64_t processors = 0;
  bool all_have_ids = true;
  std::string package, core;
  bool in_processor = false;
  auto finish = [&] {
    if (!in_processor) return;
    if (core.empty()) all_have_ids = false;
    else cores.insert({package, core});
  };
  while (!cpuinfo.empty()) {
    const size_t nl = cpuinfo.find('\n');
    const std::string_view line = cpuinfo.substr(0, nl);
    cpuinfo.remove_prefix(nl == std::string_view::npos ? cpuinfo.size() : nl + 1);
    std::string_view v;
    if (field(line, "processor", &v)) {
      finish();
      in_processor = true, ++processors;
      package.clear(), core.clear();
    } else if (field(line, "physical id", &v)) {
      package = v;
    } else if (field(line, "core id", &v)) {
      core = v;
    }
  }
  finish();
  if (processors == 0) return 0;
  return all_have_ids ? int64_t(cores.size()) : processors;
}

int64_t default_thread_count() {
  std::ifstream f("/proc/cpuinfo");
  std::string text, line;
  for (int n = 0; std::getline(f, line) && n < 1 << 20; ++n) text += line + "\n";
  int64_t cores = parse_physical_cores(text);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int64_t allowed = CPU_COUNT(&set);
    if (cores <= 0 || allowed < cores) cores = allowed;
  }
  return cores > 0 ? cores : int64_t(omp_get_num_procs());
}

int64_t apply_thread_count(int64_t threads) {
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    if (env && *env) return 0;
    threads = default_thread_count();
  }
  omp_set_num_threads(int(threads));
  return threads;
}

}  // namespace tpro
