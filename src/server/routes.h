// The HTTP routes of `tpro serve` (internal to server/): static UI files, the JSON API and the
// event stream. Every handler answers JSON; errors become {"error": {"message", "type",
// "field"}} with the ApiError's status (400 for bad input, 409 for a busy or idle job, 429 for
// a second concurrent dataset check, 503 past the cap of open event streams; see limits.h).
//   GET  /api/info /api/schema /api/models /api/data /api/runs /api/job /api/evaluations
//   GET  /api/runs/<name>/graph  /api/runs/<name>/params  /api/events (SSE)  /api/download
//   POST /api/train /api/check /api/plan /api/stop /api/save /api/control /api/perplexity /api/export
//   GET /api/playground, POST /api/playground/{generate,stop,unload} (playground_routes.cpp)
#pragma once
#include <filesystem>

#include "server/event_buffer.h"
#include "server/job_manager.h"
#include "server/limits.h"
#include "server/playground.h"
#include "server/sandbox.h"
#include "server/server.h"

namespace httplib {
class Server;
}

namespace tpro {

int playground_delay_from_env();  // TPRO_PLAYGROUND_DELAY_MS (tests), 0 when unset

struct ServerContext {
  ServerContext(const ServeOptions& o)
      : opt(o), sb(o.models, o.data, o.loras), events(o.max_events), jobs(events),
        evaluations_csv(sb.root(Root::Loras) / "evaluations.csv") {}
  ServeOptions opt;
  PathSandbox sb;
  EventBuffer events;
  JobManager jobs;
  std::filesystem::path evaluations_csv;
  ServerLimits limits;
  Playground playground{playground_delay_from_env()};
};

void add_routes(httplib::Server& svr, ServerContext& ctx);
void add_playground_routes(httplib::Server& svr, ServerContext& ctx);  // playground_routes.cpp
// Token, Host, Origin and Content-Type checks run before any route.
void add_request_guards(httplib::Server& svr, ServerContext& ctx);

}  // namespace tpro
