// Console training observer; see console.h.
#include "cli/console.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "core/log.h"

namespace tpro::cli {

TrainObserver console_observer() {
  struct State {
    bool tty = isatty(STDERR_FILENO) != 0;
    bool line_open = false;
    std::chrono::steady_clock::time_point last{};
  };
  auto s = std::make_shared<State>();
  return [s](const TrainEvent& e) {
    auto close_line = [&] {
      if (s->line_open) std::fputc('\n', stderr);
      s->line_open = false;
    };
    switch (e.kind) {
      case TrainEvent::Kind::Step: {
        if (log_level() > LogLevel::Info) return;
        const auto now = std::chrono::steady_clock::now();
        const bool last = e.record.step == e.total_steps;
        if (!s->tty && !last && e.record.step > e.first_step + 1 && now - s->last < std::chrono::seconds(5)) return;
        s->last = now;
        Progress pr{e.record.step, e.total_steps, e.record.epoch, e.record.elapsed_s, e.record.loss,
                    e.record.lr,   e.record.grad_norm, e.record.tokens_per_s, e.first_step, e.first_elapsed_s};
        std::fprintf(stderr, s->tty ? "\r\033[K%s" : "%s\n", format_progress(pr).c_str());
        s->line_open = s->tty;
        std::fflush(stderr);
        return;
      }
      default:
        close_line();
        log_info(e.text);
    }
  };
}

}  // namespace tpro::cli
