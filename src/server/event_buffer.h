// Numbered events for server-sent events (SSE): the job manager publishes, every open
// /api/events stream waits for what comes after the id it has. A stream that reconnects with
// Last-Event-ID gets exactly what it missed, as long as the buffer still holds it (the
// oldest events are dropped past `capacity`; the stream is then told to resync). Ids keep
// growing across jobs; a stream without an id starts at the current job's first event.
// Reference: WHATWG HTML, "Server-sent events" (event stream format, Last-Event-ID).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tpro {

struct ServerEvent {
  int64_t id = 0;
  std::string type;  // the SSE "event:" name
  std::string data;  // one line of JSON
};

// "id: 7\nevent: step\ndata: {...}\n\n"
std::string sse_frame(const ServerEvent& e);

class EventBuffer {
 public:
  explicit EventBuffer(size_t capacity = 100000) : capacity_(capacity) {}

  int64_t publish(const std::string& type, const nlohmann::json& data);  // returns the id
  // Later streams without an id start at the next event published.
  void mark_job_start();

  struct Batch {
    std::vector<ServerEvent> events;
    bool gap = false;    // events after `after` were dropped: the client must reload its state
    bool closed = false;
  };
  // Events with id > after (after < 0: from the current job's start), at most kMaxBatch,
  // waiting up to `wait` when there are none yet. Returns at once once closed.
  static constexpr size_t kMaxBatch = 2000;
  Batch wait_after(int64_t after, std::chrono::milliseconds wait) const;

  int64_t last_id() const;
  void close();  // wakes every waiting stream; used when the server stops

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<ServerEvent> events_;
  int64_t next_id_ = 1;
  int64_t job_start_ = 1;  // id of the current job's first event
  bool closed_ = false;
};

}  // namespace tpro
