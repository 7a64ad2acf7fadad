// The C++ RAII wrapper (examples/cpp/presence.hpp) over the C ABI: ownership through
// unique_ptr, exceptions for statuses, no leak under AddressSanitizer.
#include "presence.hpp"

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <string>

static int passed = 0, failed = 0;
#define CHECK(cond)                                                           \
  do {                                                                        \
    if (cond) {                                                               \
      passed++;                                                               \
    } else {                                                                  \
      failed++;                                                               \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                         \
  } while (0)

template <typename F>
static presence_status status_of(F &&f) {
  try {
    f();
  } catch (const presence::Error &e) {
    return e.status();
  }
  return PRESENCE_STATUS_OK;
}

static bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

int main() {
  {
    presence::Engine engine;
    engine.track("video:7", 1, std::string("alice"));
    engine.track("video:7", 2, std::string("alice"));
    engine.track("video:7", 3);
    auto c = engine.counts("video:7");
    CHECK(c.viewers == 1 && c.users == 1 && c.connections == 3);

    CHECK(status_of([&] { engine.track("video:7", 1); }) == PRESENCE_STATUS_ALREADY_TRACKED);
    CHECK(status_of([&] { engine.untrack("video:7", 99); }) == PRESENCE_STATUS_NOT_TRACKED);
    CHECK(status_of([&] { engine.track("video:7", 4, std::nullopt, std::string("[1]")); }) ==
          PRESENCE_STATUS_INVALID_META);
    try {
      engine.untrack("video:7", 99);
    } catch (const presence::Error &e) {
      CHECK(std::string(e.what()).find("PRESENCE_STATUS_NOT_TRACKED: connection 99") == 0);
    }

    auto diffs = engine.poll_diff();
    CHECK(diffs.size() == 1);
    CHECK(diffs[0].topic == "video:7" && diffs[0].seq == 1 && diffs[0].counts.connections == 3);
    CHECK(diffs[0].occupancy == PRESENCE_OCCUPANCY_OCCUPIED);
    CHECK(diffs[0].payload.find("\"joins\":{\"viewers\":{\"count\":1},\"users\":{\"count\":1}}") !=
          std::string::npos);
    std::uint64_t seq = 0;
    CHECK(engine.list("video:7", &seq) == R"({"viewers":{"count":1},"users":{"count":1}})");
    CHECK(seq == 1);

    // alice's second tab closing changes nothing a client shows: no diff.
    CHECK(engine.untrack_conn(1) == 1);
    CHECK(engine.poll_diff_json() == "[]");
    CHECK(engine.counts("video:7").connections == 2);
    CHECK(engine.untrack_conn(3) == 1);
    CHECK(engine.poll_diff_json().find("\"connections\":1") != std::string::npos);
    CHECK(engine.poll_diff_json() == "[]");
    CHECK(engine.stats().presences == 1);
    auto many = engine.counts_many({"video:7", "nowhere"});
    CHECK(many.size() == 2 && many[0].connections == 1 && many[1].connections == 0);
    CHECK(engine.counts_many({}).empty());
    CHECK(status_of([&] { engine.counts_many({"video:7", ""}); }) == PRESENCE_STATUS_INVALID_ARGUMENT);
    CHECK(engine.stats().polls == 4);
    CHECK(engine.metrics().find("\npresence_polls_total 4\n") != std::string::npos);
    CHECK(engine.wakeup_fd() >= 0);
  }  // the engine is freed here, with presences still tracked

  {
    presence::Engine phoenix(R"({"format":"phoenix"})");
    phoenix.track("room", 1, std::string("bob"), std::string(R"({"status":"online"})"));
    phoenix.poll_diff();
    phoenix.update("room", 1, R"({"status":"away"})");
    auto diffs = phoenix.poll_diff();
    CHECK(diffs.size() == 1 && diffs[0].payload.find("phx_ref_prev") != std::string::npos);
    // Moving the engine moves ownership; the moved-from handle is empty.
    presence::Engine moved = std::move(phoenix);
    CHECK(moved.get() != nullptr && phoenix.get() == nullptr);
  }

  {
    using std::chrono::milliseconds;
    presence::Engine engine;
    engine.track_ttl("inbox", 7, milliseconds(60000), std::string("carol"));
    engine.track_ttl("outbox", 7, std::chrono::minutes(2), std::nullopt, std::string("{}"));
    engine.track("inbox", 8);
    CHECK(engine.counts("inbox").users == 1 && engine.counts("outbox").viewers == 1);
    CHECK(engine.touch(7) == 2);
    CHECK(engine.touch(8) == 0);  // no TTL presence: not an error
    CHECK(status_of([&] { engine.track_ttl("inbox", 7, milliseconds(1000)); }) ==
          PRESENCE_STATUS_ALREADY_TRACKED);
    CHECK(status_of([&] { engine.track_ttl("t", 9, milliseconds(0)); }) ==
          PRESENCE_STATUS_INVALID_ARGUMENT);
    CHECK(status_of([&] { engine.track_ttl("t", 9, milliseconds(-5)); }) ==
          PRESENCE_STATUS_INVALID_ARGUMENT);
    CHECK(status_of([&] { engine.track_ttl("t", 9, std::chrono::hours(24 * 31)); }) ==
          PRESENCE_STATUS_INVALID_ARGUMENT);
    CHECK(engine.counts("t").connections == 0);
    engine.untrack("outbox", 7);
    CHECK(engine.touch(7) == 1);
    CHECK(engine.untrack_conn(7) == 1);
    CHECK(engine.stats().expired == 0);
    engine.poll_diff();

    // Left alone, the presence expires, and the engine's timer wakes the descriptor.
    engine.track_ttl("inbox", 9, milliseconds(30), std::string("dave"));
    engine.poll_diff();
    CHECK(readable_within(engine.wakeup_fd(), 10000));
    auto diffs = engine.poll_diff();
    CHECK(diffs.size() == 1 && diffs[0].topic == "inbox");
    CHECK(diffs.size() == 1 &&
          diffs[0].payload.find("\"leaves\":{\"viewers\":{\"count\":0},\"users\":{\"count\":1}}") !=
              std::string::npos);
    CHECK(engine.stats().expired == 1);
    CHECK(engine.metrics().find("\npresence_expired_total 1\n") != std::string::npos);
    CHECK(engine.touch(9) == 0);
  }

  CHECK(status_of([] { presence::Engine bad(R"({"format":"nope"})"); }) ==
        PRESENCE_STATUS_INVALID_CONFIG);

  std::printf("c++ wrapper: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
