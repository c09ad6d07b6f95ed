// Server lifecycle (bind, listen, stop) and the request guards; see server.h.
#include "server/server.h"

#include <arpa/inet.h>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "server/api_error.h"
#include "server/routes.h"

namespace tpro {

namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(e.body().dump(), "application/json");
}

// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned diff = unsigned(a.size() ^ b.size());
  for (size_t i = 0; i < a.size(); ++i) diff |= unsigned(char(a[i] ^ (i < b.size() ? b[i] : 0)));
  return diff == 0;
}

std::string cookie_value(const httplib::Request& req, const std::string& name) {
  const std::string c = req.get_header_value("Cookie");
  for (size_t at = 0; at < c.size();) {
    size_t end = c.find(';', at);
    if (end == std::string::npos) end = c.size();
    std::string part = c.substr(at, end - at);
    part.erase(0, part.find_first_not_of(' '));
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    at = end + 1;
  }
  return "";
}

std::string host_without_port(const std::string& host) {
  if (!host.empty() && host[0] == '[') return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
}

bool token_ok(const httplib::Request& req, const std::string& token) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0 && same_secret(auth.substr(7), token)) return true;
  if (req.has_param("token") && same_secret(req.get_param_value("token"), token)) return true;
  return same_secret(cookie_value(req, "tpro_token"), token);
}

// nullopt = pass; otherwise the error to answer with.
std::optional<ApiError> guard(const httplib::Request& req, const ServeOptions& opt) {
  const std::string host = req.get_header_value("Host");
  if (opt.token.empty() && !is_loopback_host(host_without_port(host)))
    return ApiError(403, "forbidden",
                    cat("Host '", host, "' is not a loopback name; this server answers only http://127.0.0.1 or ",
                        "http://localhost (hint: start it with --token to serve other names)"));
  if (!opt.token.empty() && !token_ok(req, opt.token))
    return ApiError(401, "unauthorized",
                    "missing or wrong token (hint: open the URL that tpro serve printed, which ends in ?token=...)");
  if (req.method == "POST") {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && origin != "http://" + host)
      return ApiError(403, "forbidden", cat("cross-origin request from ", origin, " refused"));
    const std::string type = req.get_header_value("Content-Type");
    if (type.rfind("application/json", 0) != 0)
      return ApiError(415, "invalid_request_error",
                      cat("POST bodies must be application/json, got '", type, "'"));
  }
  return std::nullopt;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::string random_token() {
  const std::string bytes = [] {
    std::FILE* f = std::fopen("/dev/urandom", "rb");
    if (!f) fail("cannot open /dev/urandom for the server token");
    std::string b(16, '\0');
    const size_t n = std::fread(b.data(), 1, b.size(), f);
    std::fclose(f);
    if (n != b.size()) fail("cannot read /dev/urandom for the server token");
    return b;
  }();
  static const char* kHex = "0123456789abcdef";
  std::string t;
  for (unsigned char c : bytes) t += kHex[c >> 4], t += kHex[c & 15];
  return t;
}

void add_request_guards(httplib::Server& svr, ServerContext& ctx) {
  svr.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (auto e = guard(req, ctx.opt)) {
      send_error(res, *e);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!ctx.opt.token.empty() && req.has_param("token"))
      res.set_header("Set-Cookie", "tpro_token=" + ctx.opt.token + "; Path=/; HttpOnly; SameSite=Strict");
    return httplib::Server::HandlerResponse::Unhandled;
  });
}

struct Server::Impl {
  explicit Impl(const ServeOptions& o) : ctx(o) {}
  ServerContext ctx;
  httplib::Server svr;
  std::thread thread;
  int port = -1;
  std::atomic<bool> shut{false};
};

Server::Server(const ServeOptions& opt) {
  if (opt.token.empty() && !is_loopback_host(opt.host))
    fail("--host ", opt.host, " is reachable from other machines: a token is required (hint: --token SECRET, ",
         "or leave --host at 127.0.0.1)");
  impl_ = std::make_unique<Impl>(opt);
  auto& svr = impl_->svr;
  // Each open event stream holds a thread: limits.h caps them well below the pool.
  svr.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  svr.set_payload_max_length(4 << 20);
  add_request_guards(svr, impl_->ctx);
  add_routes(svr, impl_->ctx);
}

Server::~Server() { stop(); }

int Server::bind() {
  if (impl_->port >= 0) return impl_->port;
  const ServeOptions& o = impl_->ctx.opt;
  if (o.port == 0) {
    impl_->port = impl_->svr.bind_to_any_port(o.host);
  } else if (impl_->svr.bind_to_port(o.host, o.port)) {
    impl_->port = o.port;
  }
  if (impl_->port < 0 || (o.port == 0 && impl_->port == 0)) {
    impl_->port = -1;
    fail("cannot listen on ", o.host, ":", o.port, " (hint: the port is in use or the address is not local; try ",
         "--port with another number)");
  }
  return impl_->port;
}

void Server::listen() {
  bind();
  impl_->svr.listen_after_bind();
}

void Server::start() {
  bind();
  impl_->thread = std::thread([this] { impl_->svr.listen_after_bind(); });
  for (int i = 0; i < 5000 && !impl_->svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!impl_->svr.is_running()) fail("the server did not start listening on port ", impl_->port);
}

void Server::shutdown() {
  if (impl_->shut.exchange(true)) return;
  impl_->ctx.events.close();
  impl_->ctx.jobs.cancel();
  impl_->ctx.playground.cancel("shutdown");
  impl_->svr.stop();
}

void Server::stop() {
  if (!impl_) return;
  shutdown();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->ctx.jobs.stop_and_wait();
}

int Server::port() const { return impl_->port; }

std::string Server::url() const {
  const std::string& h = impl_->ctx.opt.host;
  const std::string host = h.find(':') != std::string::npos && h.front() != '[' ? "[" + h + "]" : h;
  std::string u = "http://" + (host == "0.0.0.0" || host == "[::]" ? std::string("127.0.0.1") : host) + ":" +
                  std::to_string(impl_->port) + "/";
  if (!impl_->ctx.opt.token.empty()) u += "?token=" + impl_->ctx.opt.token;
  return u;
}

JobManager& Server::jobs() { return impl_->ctx.jobs; }

ServerLimits& Server::limits() { return impl_->ctx.limits; }

}  // namespace tpro
