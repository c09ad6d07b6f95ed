// Helpers for the server tests: a fixture folder per test (fixture_folders.h), an in-process
// Server on an ephemeral loopback port, JSON requests through httplib::Client, and a reader
// of the /api/events stream.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "server/fixture_folders.h"
#include "server/server.h"

namespace tpro::test {

using nlohmann::json;

struct Reply {
  int status = 0;
  json body;
  httplib::Headers headers;
};

class TestServer {
 public:
  explicit TestServer(const std::string& name, std::string token = "") : dir_(fresh_dir(name)) {
    write_serve_fixture(dir_);
    ServeOptions o;
    o.port = 0;
    o.models = dir_ / "models";
    o.data = dir_ / "data";
    o.loras = dir_ / "loras";
    o.token = std::move(token);
    server_ = std::make_unique<Server>(o);
    server_->start();
  }
  ~TestServer() {
    server_->stop();
    fs::remove_all(dir_);
  }
  const fs::path& dir() const { return dir_; }
  int port() const { return server_->port(); }
  Server& server() { return *server_; }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(60, 0);
    return c;
  }
  Reply get(const std::string& path, const httplib::Headers& h = {}) const {
    auto r = client().Get(path.c_str(), h);
    return reply(r, path);
  }
  Reply post(const std::string& path, const json& body, const httplib::Headers& h = {}) const {
    auto r = client().Post(path.c_str(), h, body.dump(), "application/json");
    return reply(r, path);
  }

 private:
  static Reply reply(const httplib::Result& r, const std::string& path) {
    Reply out;
    if (!r) {
      ADD_FAILURE() << "request " << path << " failed: " << httplib::to_string(r.error());
      return out;
    }
    out.status = r->status;
    out.headers = r->headers;
    out.body = json::parse(r->body, nullptr, false);
    if (out.body.is_discarded()) out.body = r->body;
    return out;
  }
  fs::path dir_;
  std::unique_ptr<Server> server_;
};

struct SseEvent {
  int64_t id = -1;
  std::string type;
  json data;
};

// Reads /api/events (after `after`, or with a Last-Event-ID header when last_event_id >= 0)
// until stop(event) is true or nothing arrives for 60 s; returns everything read.
inline std::vector<SseEvent> read_events(const TestServer& s, const std::function<bool(const SseEvent&)>& stop,
                                         int64_t after = -1, int64_t last_event_id = -1) {
  std::vector<SseEvent> got;
  std::string buf;
  httplib::Headers h;
  if (last_event_id >= 0) h.emplace("Last-Event-ID", std::to_string(last_event_id));
  const std::string path = after >= 0 ? "/api/events?after=" + std::to_string(after) : "/api/events";
  bool done = false;
  s.client().Get(path.c_str(), h, [&](const char* data, size_t n) {
    buf.append(data, n);
    for (size_t end; (end = buf.find("\n\n")) != std::string::npos;) {
      const std::string frame = buf.substr(0, end);
      buf.erase(0, end + 2);
      SseEvent e;
      std::istringstream lines(frame);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("id: ", 0) == 0) e.id = std::stoll(line.substr(4));
        if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data = json::parse(line.substr(6));
      }
      if (e.type.empty()) continue;  // retry: and keep-alive comments
      got.push_back(e);
      if (stop(e)) {
        done = true;
        return false;
      }
    }
    return true;
  });
  EXPECT_TRUE(done) << "the event stream ended before the awaited event (" << got.size() << " events read)";
  return got;
}

// Polls /api/job (every 100 ms, at most a minute) until `done` holds for it.
inline json wait_for_state(const TestServer& s, const std::function<bool(const json&)>& done) {
  json last;
  for (int i = 0; i < 600; ++i) {
    last = s.get("/api/job").body;
    if (done(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "job did not reach the awaited state: " << last.dump();
  return last;
}

inline bool is_done(const json& j) {
  const std::string st = j.value("state", "");
  return st == "finished" || st == "stopped" || st == "failed";
}

// Training parameters of a tiny run that goes on until stopped (about 70 steps/s on one core).
inline json endless_run(const std::string& name) {
  return {{"model", "tiny"},     {"lora_name", name},         {"raw_text_file", "sample.txt"},
          {"cutoff_len", 64},    {"micro_batch_size", 2},     {"max_steps", 1000000},
          {"threads", 1},        {"save_steps_under_loss", 0}, {"eval_steps", 0},
          {"warmup_steps", 0},   {"learning_rate", 1e-3},     {"lora_rank", 4}, {"lora_alpha", 8}};
}

}  // namespace tpro::test
