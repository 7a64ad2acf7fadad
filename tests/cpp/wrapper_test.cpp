// The C++ RAII wrapper (examples/cpp/presence.hpp) over the C ABI: ownership through
// unique_ptr, exceptions for statuses, no leak under AddressSanitizer.
#include "presence.hpp"

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

  CHECK(status_of([] { presence::Engine bad(R"({"format":"nope"})"); }) ==
        PRESENCE_STATUS_INVALID_CONFIG);

  std::printf("c++ wrapper: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
