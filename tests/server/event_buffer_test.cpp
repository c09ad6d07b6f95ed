// server/event_buffer: consecutive ids, replay after an id (Last-Event-ID), a new stream
// starting at the current job, gaps when the buffer dropped what a client missed, waiting and
// waking, and the SSE frame format.
#include <gtest/gtest.h>

#include <thread>

#include "server/event_buffer.h"

using namespace tpro;
using namespace std::chrono_literals;

TEST(EventBuffer, ReplaysAfterAnId) {
  EventBuffer b;
  EXPECT_EQ(b.last_id(), 0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.publish("step", {{"step", i}}), i + 1);
  const auto r = b.wait_after(2, 0ms);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[0].id, 3);
  EXPECT_EQ(r.events[0].type, "step");
  EXPECT_EQ(r.events[0].data, "{\"step\":2}");
  EXPECT_FALSE(r.gap);
  EXPECT_TRUE(b.wait_after(5, 0ms).events.empty());
  EXPECT_EQ(b.wait_after(-1, 0ms).events.size(), 5u);  // no id: from the current job's start
}

TEST(EventBuffer, NewStreamsStartAtTheCurrentJob) {
  EventBuffer b;
  b.publish("state", {{"job", 1}});
  b.publish("step", {{"job", 1}});
  b.mark_job_start();
  b.publish("state", {{"job", 2}});
  const auto r = b.wait_after(-1, 0ms);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].id, 3);
  EXPECT_EQ(b.wait_after(0, 0ms).events.size(), 3u);  // an explicit id still replays across jobs
}

TEST(EventBuffer, GapWhenMissedEventsWereDropped) {
  EventBuffer b(4);
  for (int i = 0; i < 10; ++i) b.publish("step", {{"i", i}});
  auto r = b.wait_after(3, 0ms);  // ids 4..6 are gone (7..10 kept)
  EXPECT_TRUE(r.gap);
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].id, 7);
  EXPECT_FALSE(b.wait_after(6, 0ms).gap);  // exactly the oldest kept one next: nothing lost
  r = b.wait_after(42, 0ms);               // an id from a previous server process
  EXPECT_TRUE(r.gap);
  EXPECT_EQ(r.events.size(), 4u);
}

TEST(EventBuffer, WaitsAndWakes) {
  EventBuffer b;
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    b.publish("message", {{"text", "hi"}});
  });
  const auto start = std::chrono::steady_clock::now();
  const auto r = b.wait_after(0, 10s);
  t.join();
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  std::thread c([&] {
    std::this_thread::sleep_for(50ms);
    b.close();
  });
  const auto closed = b.wait_after(1, 10s);
  c.join();
  EXPECT_TRUE(closed.closed);
  EXPECT_TRUE(closed.events.empty());
}

TEST(EventBuffer, SseFrame) {
  // A newline in the data is escaped by the JSON dump, so one data: line always suffices.
  EventBuffer b;
  b.publish("message", {{"text", "a\nb"}});
  EXPECT_EQ(sse_frame(b.wait_after(0, 0ms).events[0]), "id: 1\nevent: message\ndata: {\"text\":\"a\\nb\"}\n\n");
}
