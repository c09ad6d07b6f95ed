// `tpro serve`'s HTTP server: the web UI (files under web/, embedded in the binary), the JSON
// API and the server-sent event stream, over cpp-httplib. It listens on loopback by default;
// any other address needs a token (sent as "Authorization: Bearer", a ?token= query that
// sets a cookie, or that cookie). POSTs must be application/json and same-origin, and on
// loopback without a token the Host header must name loopback too (no DNS rebinding), so a
// web page elsewhere cannot drive it. Not here: the routes' logic (routes.cpp, job_manager.h).
#pragma once
#include <filesystem>
#include <memory>
#include <string>

namespace tpro {

class JobManager;
struct ServerLimits;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 7860;  // 0 = any free port (tests)
  std::filesystem::path models = "models", data = "datasets", loras = "loras";
  std::string token;            // required on every request when not empty
  size_t max_events = 100000;   // SSE replay buffer
};

bool is_loopback_host(const std::string& host);  // 127.0.0.0/8, ::1, localhost
std::string random_token();                      // 32 hex digits from /dev/urandom

class Server {
 public:
  // Checks the folders (Error naming the flag) and that a non-loopback host has a token.
  explicit Server(const ServeOptions& opt);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int bind();      // returns the port (the chosen one for port 0); Error when it is taken
  void listen();   // serves until stop(); binds first if needed
  void start();    // bind + listen on a background thread; returns once it accepts connections
  // Without waiting: stops accepting, ends the event streams, asks a running job to stop
  // (listen() returns). Safe from another thread; idempotent.
  void shutdown();
  // shutdown(), then waits for the background thread and the job (a training run saves its
  // adapter first). Idempotent; call it from the thread that owns the Server.
  void stop();

  int port() const;
  std::string url() const;  // "http://127.0.0.1:7860/" (+ "?token=..." when one is set)
  JobManager& jobs();
  ServerLimits& limits();  // limits.h: the open event streams and dataset checks, and their caps

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tpro
