// The SSE event buffer; see event_buffer.h.
#include "server/event_buffer.h"

#include <algorithm>

namespace tpro {

std::string sse_frame(const ServerEvent& e) {
  // data must be a single line: nlohmann's compact dump escapes every newline.
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\ndata: " + e.data + "\n\n";
}

int64_t EventBuffer::publish(const std::string& type, const nlohmann::json& data) {
  std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    events_.push_back({id, type, std::move(text)});
    while (events_.size() > capacity_) events_.pop_front();
  }
  cv_.notify_all();
  return id;
}

void EventBuffer::mark_job_start() {
  std::lock_guard<std::mutex> lock(mu_);
  job_start_ = next_id_;
}

EventBuffer::Batch EventBuffer::wait_after(int64_t after, std::chrono::milliseconds wait) const {
  std::unique_lock<std::mutex> lock(mu_);
  Batch b;
  if (after > next_id_ - 1) {  // an id from an earlier server process: start this job afresh
    b.gap = true;
    after = job_start_ - 1;
  }
  if (after < 0) after = job_start_ - 1;
  cv_.wait_for(lock, wait, [&] { return closed_ || next_id_ - 1 > after; });
  b.closed = closed_;
  const int64_t oldest = events_.empty() ? next_id_ : events_.front().id;
  if (after + 1 < oldest && after < next_id_ - 1) b.gap = true;
  // Ids are consecutive, so the first event to send sits at index after + 1 - oldest.
  const size_t first = size_t(std::max<int64_t>(0, after + 1 - oldest));
  const size_t last = std::min(events_.size(), first + kMaxBatch);
  for (size_t i = first; i < last; ++i) b.events.push_back(events_[i]);
  return b;
}

int64_t EventBuffer::last_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_id_ - 1;
}

void EventBuffer::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace tpro
