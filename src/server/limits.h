// How much of the server one kind of request may hold at once. Each open /api/events stream
// keeps one of the 64 HTTP worker threads for as long as it stays open, so streams are capped
// (kMaxEventStreams) and the excess is answered 503 at once, leaving threads for the API; a
// dataset check tokenizes a whole dataset, so one runs at a time (kMaxDatasetChecks) and a
// second is answered 429; a download streams a file, a few at a time (kMaxDownloads, then 503). Not here: the answers themselves (routes.cpp).
#pragma once
#include <memory>
#include <mutex>

namespace tpro {

constexpr int kServerThreads = 64;    // cpp-httplib's worker pool
constexpr int kMaxEventStreams = 16;  // open /api/events streams (a page keeps one)
constexpr int kMaxDatasetChecks = 1;  // concurrent POST /api/check
constexpr int kMaxDownloads = 4;      // concurrent GET /api/download (each holds a thread while it streams)

// A counting limit. A slot is held by a shared_ptr and given back when its last copy goes, so
// a slot captured by a streaming response is released whenever that response is destroyed.
class Slots {
 public:
  explicit Slots(int max) : max_(max) {}
  Slots(const Slots&) = delete;
  Slots& operator=(const Slots&) = delete;
  // A held slot, or nullptr when all are taken.
  std::shared_ptr<void> try_acquire() {
    std::lock_guard<std::mutex> lock(*mu_);
    if (*used_ >= max_) return nullptr;
    ++*used_;
    // The deleter owns the count's state, so a slot outliving this object stays safe.
    auto mu = mu_;
    auto used = used_;
    return std::shared_ptr<void>(used.get(), [mu, used](void*) {  // non-null: a held slot tests true
      std::lock_guard<std::mutex> lock(*mu);
      --*used;
    });
  }
  int in_use() const {
    std::lock_guard<std::mutex> lock(*mu_);
    return *used_;
  }
  int max() const { return max_; }

 private:
  int max_;
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<int> used_ = std::make_shared<int>(0);
};

struct ServerLimits {
  Slots event_streams{kMaxEventStreams};
  Slots dataset_checks{kMaxDatasetChecks};
  Slots downloads{kMaxDownloads};
};

}  // namespace tpro
