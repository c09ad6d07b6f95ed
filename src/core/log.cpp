// stderr logger; see log.h.
#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tpro {

namespace {
std::atomic<int> g_level{int(LogLevel::Info)};
std::mutex g_mu;
}  // namespace

void set_log_level(LogLevel level) { g_level = int(level); }
LogLevel log_level() { return LogLevel(g_level.load()); }

void log_message(LogLevel level, const std::string& msg) {
  static const char* kPrefix[] = {"debug: ", "", "warning: ", "error: ", ""};
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s%s\n", kPrefix[int(level)], msg.c_str());
  std::fflush(stderr);
}

}  // namespace tpro
