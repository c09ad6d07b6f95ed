// Logging to stderr with a level; the CLI sets the level from --quiet/--verbose.
// Progress lines for training are the trainer's observers, not this.
#pragma once
#include <string>

#include "core/error.h"

namespace tpro {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Silent = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& msg);

template <typename... Args>
void log_info(const Args&... a) {
  if (log_level() <= LogLevel::Info) log_message(LogLevel::Info, cat(a...));
}
template <typename... Args>
void log_warn(const Args&... a) {
  if (log_level() <= LogLevel::Warn) log_message(LogLevel::Warn, cat(a...));
}
template <typename... Args>
void log_debug(const Args&... a) {
  if (log_level() <= LogLevel::Debug) log_message(LogLevel::Debug, cat(a...));
}

}  // namespace tpro
