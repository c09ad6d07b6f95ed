// The routes of `tpro serve`; see routes.h.
#include "server/routes.h"

#include <httplib.h>

#include <charconv>
#include <fstream>

#include "core/embedded.h"
#include "data/check.h"
#include "server/api_error.h"
#include "server/listings.h"
#include "server/request.h"
#include "tokenizer/tokenizer.h"
#include "train/perplexity.h"
#include "train/trainer.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;
using httplib::Request;
using httplib::Response;

namespace {

constexpr auto kKeepAliveEvery = std::chrono::seconds(15);
constexpr size_t kMaxSampleChars = 20000;
constexpr const char* kPlanName = "memory-plan";  // lora_name for a plan asked without one

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Wraps an API handler: its JSON (status 200 unless it set one) or its error as JSON.
template <typename F>
httplib::Server::Handler api(F f) {
  return [f](const Request& req, Response& res) {
    try {
      json out = f(req, res);
      send_json(res, res.status > 0 ? res.status : 200, out);
    } catch (const ApiError& e) {
      send_json(res, e.status(), e.body());
    } catch (const Error& e) {
      send_json(res, 400, ApiError(400, "invalid_request_error", e.what()).body());
    } catch (const std::exception& e) {
      send_json(res, 500, ApiError(500, "server_error", e.what()).body());
    }
  };
}

const char* content_type(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  if (ext == ".zip") return "application/zip";
  return "application/octet-stream";
}

void serve_static(const Request& req, Response& res) {
  const std::string name = req.path == "/" ? "web/index.html" : "web" + req.path;
  for (const auto& [path, bytes] : embedded_files()) {
    if (path == name) {
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(bytes), content_type(name));
      return;
    }
  }
  send_json(res, 404, ApiError(404, "not_found", cat("no such page: ", req.path)).body());
}

// The data field whose file an error message names (dataset errors quote the path).
std::string field_of_data_error(const std::string& msg, const TrainParams& p) {
  const DataOptions& d = p.data;
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"raw_text_file", &d.raw_text_file},
                                    {"dataset", &d.dataset}, {"eval_dataset", &d.eval_dataset}, {"format", &d.format},
                                    {"jsonl_dataset", &d.jsonl_dataset}, {"jsonl_eval_dataset", &d.jsonl_eval_dataset}})
    if (!value->empty() && msg.find(*value) != std::string::npos) return name;
  if (msg.find(p.model) != std::string::npos) return "model";  // e.g. its tokenizer.json
  return field_in_message(msg);
}

json check_report_json(const CheckReport& r, const Tokenizer& tok) {
  std::string sample = render_check_sample(r, codec_of(tok));
  if (sample.size() > kMaxSampleChars) sample = sample.substr(0, kMaxSampleChars) + "\n[...]";
  return {{"report", format_check_report(r)},
          {"blocks", r.blocks},
          {"eval_blocks", r.eval_blocks},
          {"tokens", r.tokens},
          {"trained_tokens", r.trained_tokens},
          {"longest", r.longest},
          {"suggested_cutoff", r.suggested_cutoff},
          {"over_cutoff", r.over_cutoff},
          {"steps_per_epoch", r.optimizer_steps_per_epoch},
          {"warmup_suggested", r.warmup_suggested},
          {"warnings", r.warnings},
          {"sample", sample}};
}

json dataset_check(const Request& req, Response& res, ServerContext& ctx) {
  const auto slot = ctx.limits.dataset_checks.try_acquire();
  if (!slot) {
    res.set_header("Retry-After", "2");
    throw ApiError(429, "too_many_requests",
                   "a dataset check is already running: one runs at a time (hint: wait for its report, then check "
                   "again)");
  }
  const TrainParams p = train_params_from_request(parse_json_body(req.body), ctx.sb, true);
  try {
    const Tokenizer tok = Tokenizer::load(p.model);
    const CheckReport r = check_dataset(data_options_from(p), tok, int(p.micro_batch_size),
                                        int(effective_grad_accumulation(p)), p.epochs);
    return check_report_json(r, tok);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request(field_of_data_error(e.what(), p), e.what());
  }
}

// POST /api/plan: the memory plan of a run with these parameters, before Start. Tokenizes the
// dataset (the longest row batched sizes the activations), so it shares the dataset check's slot.
json memory_plan(const Request& req, Response& res, ServerContext& ctx) {
  const auto slot = ctx.limits.dataset_checks.try_acquire();
  if (!slot) {
    res.set_header("Retry-After", "2");
    throw ApiError(429, "too_many_requests",
                   "a dataset check or memory plan is already running: one runs at a time (hint: wait for it, then "
                   "ask again)");
  }
  TrainParams p = train_params_from_request(parse_json_body(req.body), ctx.sb, true);
  // The plan does not depend on the adapter's name: a form without one yet still gets its
  // estimate (a name that is there is kept: continuing an adapter checks its shapes).
  if (p.lora_name.empty()) p.lora_name = kPlanName;
  try {
    RunControl ctl;
    const MemoryPlanReport r = plan_training_memory(p, ctl);
    json j = plan_json(r.choice.plan);
    j["notes"] = r.choice.notes;
    j["use_grad_checkpoint"] = r.choice.recompute;
    j["pack_weights"] = r.choice.pack;
    j["refusal"] = r.refusal;
    return j;
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request(field_of_data_error(e.what(), p), e.what());
  }
}

// GET /api/download?path=<file>: a .zip or .gguf file in --loras (what exports write there),
// streamed in chunks as an attachment. Other files, folders and links out are refused.
void download(const Request& req, Response& res, ServerContext& ctx) {
  std::shared_ptr<void> slot = ctx.limits.downloads.try_acquire();
  try {
    if (!slot) {
      res.set_header("Retry-After", "5");
      throw ApiError(503, "unavailable",
                     cat("too many downloads at once: tpro serve streams at most ", kMaxDownloads,
                         " (hint: wait for one to finish)"));
    }
    const std::string rel = req.get_param_value("path");
    const fs::path ext = fs::path(rel).extension();
    if (ext != ".zip" && ext != ".gguf")
      bad_request("path", cat("path: '", rel, "' is not a .zip or .gguf file (hint: only exports in the loras folder ",
                              "are downloaded)"));
    const fs::path file = ctx.sb.resolve(Root::Loras, rel, "path");
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) bad_request("path", cat("path: '", rel, "' is not a regular file"));
    auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
    if (!*in) bad_request("path", cat("path: cannot open '", rel, "'"));
    const size_t size = fs::file_size(file, ec);
    std::string name = file.filename().string();
    for (char& c : name)
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
    res.set_header("Content-Disposition", cat("attachment; filename=\"", name, "\""));
    res.set_header("Cache-Control", "no-store");
    res.set_content_provider(size, content_type(name), [in, slot](size_t offset, size_t length, httplib::DataSink& sink) {
      std::vector<char> buf(std::min<size_t>(length, size_t(1) << 20));
      in->seekg(std::streamoff(offset));
      in->read(buf.data(), std::streamsize(buf.size()));
      const std::streamsize n = in->gcount();
      if (n <= 0) return false;  // the file shrank: end the response short
      return sink.write(buf.data(), size_t(n));
    });
  } catch (const ApiError& e) {
    send_json(res, e.status(), e.body());
  }
}

int64_t parse_event_id(const std::string& text) {
  int64_t id = -1;
  auto r = std::from_chars(text.data(), text.data() + text.size(), id);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || id < 0)
    bad_request("Last-Event-ID", cat("Last-Event-ID must be a non-negative integer, got '", text, "'"));
  return id;
}

void event_stream(const Request& req, Response& res, ServerContext& ctx) {
  // Held by the stream's content provider: released when the response is destroyed.
  std::shared_ptr<void> slot = ctx.limits.event_streams.try_acquire();
  if (!slot) {
    res.set_header("Retry-After", "5");
    send_json(res, 503,
              ApiError(503, "unavailable",
                       cat("too many open event streams: tpro serve keeps at most ", kMaxEventStreams,
                           " open at once (hint: close other pages or tabs showing this server)"))
                  .body());
    return;
  }
  std::string id = req.get_header_value("Last-Event-ID");
  if (id.empty() && req.has_param("after")) id = req.get_param_value("after");
  int64_t after = -1;
  try {
    if (!id.empty()) after = parse_event_id(id);
  } catch (const ApiError& e) {
    send_json(res, e.status(), e.body());
    return;
  }
  auto cursor = std::make_shared<int64_t>(after);
  auto first = std::make_shared<bool>(true);
  res.set_header("Cache-Control", "no-store");
  res.set_chunked_content_provider("text/event-stream", [&ctx, cursor, first, slot](size_t, httplib::DataSink& sink) {
    std::string out;
    if (*first) out += "retry: 1000\n\n";  // reconnect quickly after a dropped connection
    *first = false;
    const EventBuffer::Batch b = ctx.events.wait_after(*cursor, kKeepAliveEvery);
    if (b.closed) {
      if (!out.empty()) sink.write(out.data(), out.size());
      sink.done();
      return true;
    }
    if (b.gap) out += "event: resync\ndata: {}\n\n";  // missed events are gone: reload the snapshot
    for (const auto& e : b.events) {
      out += sse_frame(e);
      *cursor = e.id;
    }
    if (out.empty()) out = ": keep-alive\n\n";
    return sink.write(out.data(), out.size());
  });
}

json server_info(const ServerContext& ctx) {
  return {{"name", "tpro"},
          {"version", "0.1.0"},
          {"folders",
           {{"models", ctx.sb.root(Root::Models).string()},
            {"data", ctx.sb.root(Root::Data).string()},
            {"loras", ctx.sb.root(Root::Loras).string()}}},
          {"token_required", !ctx.opt.token.empty()}};
}

json evaluations(const ServerContext& ctx) {
  ctx.sb.check_file(Root::Loras, ctx.evaluations_csv, "evaluations.csv");
  json rows = json::array();
  for (const auto& r : read_evaluation_csv(ctx.evaluations_csv))
    rows.push_back({{"model", r.model}, {"lora", r.lora}, {"dataset", r.dataset}, {"perplexity", r.perplexity},
                    {"stride", r.stride}, {"max_length", r.max_length}, {"tokens", r.tokens}, {"date", r.date},
                    {"comment", r.comment}});
  return {{"file", ctx.evaluations_csv.string()}, {"rows", rows}};
}

}  // namespace

void add_routes(httplib::Server& svr, ServerContext& ctx) {
  using R = const Request&;
  svr.Get("/api/info", api([&ctx](R, Response&) { return server_info(ctx); }));
  svr.Get("/api/schema", api([](R, Response&) { return schema_json(); }));
  svr.Get("/api/models", api([&ctx](R, Response&) { return list_models(ctx.sb); }));
  svr.Get("/api/data", api([&ctx](R, Response&) { return list_data_files(ctx.sb); }));
  svr.Get("/api/runs", api([&ctx](R, Response&) { return list_runs(ctx.sb); }));
  svr.Get(R"(/api/runs/([^/]+)/graph)", api([&ctx](R req, Response&) { return run_graph(ctx.sb, req.matches[1]); }));
  svr.Get(R"(/api/runs/([^/]+)/params)", api([&ctx](R req, Response&) { return run_params(ctx.sb, req.matches[1]); }));
  svr.Get("/api/job", api([&ctx](R, Response&) { return ctx.jobs.snapshot(); }));
  svr.Get("/api/evaluations", api([&ctx](R, Response&) { return evaluations(ctx); }));
  svr.Get("/api/events", [&ctx](R req, Response& res) { event_stream(req, res, ctx); });

  svr.Post("/api/train", api([&ctx](R req, Response& res) {
             const TrainParams p = train_params_from_request(parse_json_body(req.body), ctx.sb);
             ctx.playground.make_room_for_job();
             json j = ctx.jobs.start_training(p);
             res.status = 202;
             return j;
           }));
  svr.Post("/api/check", api([&ctx](R req, Response& res) { return dataset_check(req, res, ctx); }));
  svr.Post("/api/plan", api([&ctx](R req, Response& res) { return memory_plan(req, res, ctx); }));
  svr.Post("/api/export", api([&ctx](R req, Response& res) {
             const ExportJob job = export_job_from_request(parse_json_body(req.body), ctx.sb);
             ctx.playground.make_room_for_job();
             json j = ctx.jobs.start_export(job);
             res.status = 202;
             return j;
           }));
  svr.Get("/api/download", [&ctx](R req, Response& res) { download(req, res, ctx); });
  svr.Post("/api/stop", api([&ctx](R, Response&) { return ctx.jobs.request_stop(); }));
  svr.Post("/api/save", api([&ctx](R, Response&) { return ctx.jobs.request_save(); }));
  svr.Post("/api/control", api([&ctx](R req, Response&) {
             const StopChange c = stop_change_from_request(parse_json_body(req.body));
             return ctx.jobs.set_stops(c.stop_at_loss, c.stop_at_epoch);
           }));
  svr.Post("/api/perplexity", api([&ctx](R req, Response& res) {
             PerplexityJob job = perplexity_job_from_request(parse_json_body(req.body), ctx.sb);
             ctx.sb.check_file(Root::Loras, ctx.evaluations_csv, "evaluations.csv");  // it is read, then replaced
             job.csv = ctx.evaluations_csv;
             ctx.playground.make_room_for_job();
             json j = ctx.jobs.start_perplexity(job);
             res.status = 202;
             return j;
           }));

  add_playground_routes(svr, ctx);

  svr.Get(R"(/api/.*)", api([](R req, Response&) -> json { not_found(cat("no API route GET ", req.path)); }));
  svr.Post(R"(/api/.*)", api([](R req, Response&) -> json { not_found(cat("no API route POST ", req.path)); }));
  svr.Get(R"(/[A-Za-z0-9_.\-]*)", [](R req, Response& res) { serve_static(req, res); });
}

}  // namespace tpro
