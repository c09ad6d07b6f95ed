// The Playground's HTTP routes (playground.h). POST /api/playground/generate answers a
// text/event-stream (event: start, token, done, end, error) written as the tokens come;
// everything that can be refused is refused before the stream starts, as a JSON error: bad
// input 400, a running job 409, a generation already running 429. The generation ends when the
// client goes (a write fails), on POST /api/playground/stop, when a job starts, or at shutdown.
//   GET  /api/playground                 {loaded, generating, last, limits, templates, job_running}
//   POST /api/playground/generate        the stream
//   POST /api/playground/stop            ends the running generation (409 when none runs)
//   POST /api/playground/unload          frees the loaded model (409 while generating)
#include <httplib.h>

#include <cstdlib>

#include "server/api_error.h"
#include "server/request.h"
#include "server/routes.h"

namespace tpro {

using nlohmann::json;
using httplib::Request;
using httplib::Response;

int playground_delay_from_env() {
  const char* v = std::getenv("TPRO_PLAYGROUND_DELAY_MS");
  return v ? std::atoi(v) : 0;
}

namespace {

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

template <typename F>
void answer(Response& res, F f) {
  try {
    f();
  } catch (const ApiError& e) {
    send_json(res, e.status(), e.body());
  } catch (const Error& e) {
    send_json(res, 400, ApiError(400, "invalid_request_error", e.what()).body());
  } catch (const std::exception& e) {
    send_json(res, 500, ApiError(500, "server_error", e.what()).body());
  }
}

std::string frame(const std::string& type, const json& data) {
  return cat("event: ", type, "\ndata: ", data.dump(-1, ' ', false, json::error_handler_t::replace), "\n\n");
}

json status(const ServerContext& ctx) {
  json s = ctx.playground.status();
  s["job_running"] = ctx.jobs.busy();
  return s;
}

void refuse_during_job(const ServerContext& ctx) {
  if (!ctx.jobs.busy()) return;
  const std::string kind = ctx.jobs.snapshot().value("kind", std::string("a"));
  throw ApiError(409, "job_running",
                 cat("a ", kind, " job is running: the playground waits until it ends, because generating would ",
                     "compete with it for the CPU cores and the memory (hint: wait for the job, or stop it)"));
}

void generate(const Request& req, Response& res, ServerContext& ctx) {
  answer(res, [&] {
    const PlaygroundRequest r = playground_request_from(parse_json_body(req.body), ctx.sb);
    refuse_during_job(ctx);
    std::shared_ptr<void> slot = ctx.playground.try_begin();
    if (!slot) {
      res.set_header("Retry-After", "2");
      throw ApiError(429, "too_many_requests",
                     "a generation is already running: the playground runs one at a time (hint: press Stop, or "
                     "wait for it to finish)");
    }
    std::shared_ptr<const PreparedGeneration> g = ctx.playground.prepare(r);
    res.set_header("Cache-Control", "no-store");
    // The slot is given back before "end" is sent, so a page may start the next one on reading it.
    auto held = std::make_shared<std::shared_ptr<void>>(std::move(slot));
    res.set_chunked_content_provider("text/event-stream", [&ctx, g, held](size_t, httplib::DataSink& sink) {
      auto emit = [&sink](const std::string& type, const json& data) {
        const std::string f = frame(type, data);
        return sink.write(f.data(), f.size()) && sink.is_writable();
      };
      const json end = ctx.playground.run(*g, emit, [&ctx] { return ctx.jobs.busy() ? std::string("job") : std::string(); });
      held->reset();
      if (end["reason"] != "disconnected") emit("end", end);
      sink.done();
      return true;
    });
  });
}

}  // namespace

void add_playground_routes(httplib::Server& svr, ServerContext& ctx) {
  svr.Get("/api/playground", [&ctx](const Request&, Response& res) { answer(res, [&] { send_json(res, 200, status(ctx)); }); });
  svr.Post("/api/playground/generate", [&ctx](const Request& req, Response& res) { generate(req, res, ctx); });
  svr.Post("/api/playground/stop", [&ctx](const Request&, Response& res) {
    answer(res, [&] {
      if (!ctx.playground.cancel("stopped")) conflict("no generation is running, nothing to stop");
      send_json(res, 200, status(ctx));
    });
  });
  svr.Post("/api/playground/unload", [&ctx](const Request&, Response& res) {
    answer(res, [&] {
      ctx.playground.unload();
      send_json(res, 200, status(ctx));
    });
  });
}

}  // namespace tpro
