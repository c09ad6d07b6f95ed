// `tpro serve`: the Training tab as a web UI served by this binary (server/server.h). Prints
// the URL, serves until Ctrl-C; the first Ctrl-C stops accepting and lets a running training
// job save its adapter, a second one exits at once.
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "server/server.h"

namespace tpro::cli {
namespace {

int run(ServeOptions o) {
  if (o.token.empty() && !is_loopback_host(o.host)) {
    o.token = random_token();
    log_info("--host ", o.host, " is not loopback: generated an access token (pass --token to choose one)");
  }
  std::error_code ec;
  fs::create_directories(o.loras, ec);  // the output folder; models and data must exist
  if (ec) fail("--loras: cannot create ", o.loras.string(), ": ", ec.message());

  // Signals go to one waiting thread (blocked here before any thread exists, so all inherit it).
  // A shell starts background jobs with SIGINT ignored; an ignored signal never reaches sigwait.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  Server server(o);
  server.bind();
  std::printf("tpro serve: listening on %s\n", server.url().c_str());
  std::fflush(stdout);
  std::thread([&server, set] {
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "tpro serve: stopping (a running training job saves first; press Ctrl-C again to quit now)\n");
    server.shutdown();
    sigwait(&set, &sig);
    _exit(128 + sig);
  }).detach();
  server.listen();
  server.stop();
  return 0;
}

Runner setup(CLI::App* sub) {
  auto o = std::make_shared<ServeOptions>();
  sub->add_option("--host", o->host, "Address to listen on; anything but loopback requires a token")
      ->capture_default_str();
  sub->add_option("--port", o->port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  sub->add_option("--models", o->models, "Folder of base models (Hugging Face folders)")->capture_default_str();
  sub->add_option("--data", o->data, "Folder of datasets, text files and format files")->capture_default_str();
  sub->add_option("--loras", o->loras, "Folder of adapters: new runs are written here, past runs listed")
      ->capture_default_str();
  sub->add_option("--token", o->token, "Access token required on every request (generated for a non-loopback --host)")
      ->envname("TPRO_SERVE_TOKEN");
  return [o] { return run(*o); };
}

TPRO_COMMAND("serve", "Serve the training web UI (train, watch, steer, evaluate perplexity)", setup);

}  // namespace
}  // namespace tpro::cli
