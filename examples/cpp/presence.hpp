// presence.hpp: a small header-only C++17 wrapper over presence.h.
//
// Ownership is RAII: an Engine owns its presence_engine (std::unique_ptr with
// presence_engine_free as deleter) and every buffer is released by presence_buf_free
// before a call returns. Failures throw presence::Error carrying the status code.
#ifndef PRESENCE_HPP
#define PRESENCE_HPP

#include "presence.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace presence {

// A failed call: what() is the engine's message, status() the code.
class Error : public std::runtime_error {
 public:
  Error(presence_status status, const std::string &message)
      : std::runtime_error(message), status_(status) {}
  presence_status status() const noexcept { return status_; }

 private:
  presence_status status_;
};

inline void check(presence_status status) {
  if (status == PRESENCE_STATUS_OK) return;
  std::string message(presence_last_error_message(nullptr, 0), '\0');
  presence_last_error_message(message.data(), message.size() + 1);
  throw Error(status, std::string(presence_status_name(status)) + ": " + message);
}

// One changed topic of a poll, copied out of the engine's buffer.
struct TopicDiff {
  std::string topic;
  std::uint64_t seq;
  presence_counts counts;
  std::string payload;
  // Whether the topic became occupied or vacated since the last poll.
  presence_occupancy occupancy;
};

class Engine {
 public:
  // config_json: nullptr or "{}" for the defaults, e.g. R"({"format":"phoenix"})".
  explicit Engine(const char *config_json = nullptr) {
    presence_engine *raw = nullptr;
    check(presence_engine_new(config_json, &raw));
    engine_.reset(raw);
  }

  void track(const std::string &topic, std::uint64_t conn,
             const std::optional<std::string> &key = std::nullopt,
             const std::optional<std::string> &meta = std::nullopt) {
    check(presence_track(get(), topic.c_str(), conn, key ? key->c_str() : nullptr,
                         meta ? meta->c_str() : nullptr));
  }
  // track for a client without a socket: the presence leaves by itself once ttl (1 ms to
  // 30 days) passes without a touch(conn). The ttl comes before key and meta, which are
  // optional here as in track.
  void track_ttl(const std::string &topic, std::uint64_t conn, std::chrono::milliseconds ttl,
                 const std::optional<std::string> &key = std::nullopt,
                 const std::optional<std::string> &meta = std::nullopt) {
    // A negative ttl becomes 0, which the engine refuses as out of range; cast as it is,
    // it would wrap to a huge count and be refused with a baffling number instead.
    const auto ms = static_cast<std::uint64_t>(ttl.count() < 0 ? 0 : ttl.count());
    check(presence_track_ttl(get(), topic.c_str(), conn, key ? key->c_str() : nullptr,
                             meta ? meta->c_str() : nullptr, ms));
  }
  // Renews every TTL presence of conn, in every topic; returns how many.
  std::size_t touch(std::uint64_t conn) {
    std::size_t renewed = 0;
    check(presence_touch(get(), conn, &renewed));
    return renewed;
  }
  void untrack(const std::string &topic, std::uint64_t conn) {
    check(presence_untrack(get(), topic.c_str(), conn));
  }
  std::size_t untrack_conn(std::uint64_t conn) {
    std::size_t removed = 0;
    check(presence_untrack_conn(get(), conn, &removed));
    return removed;
  }
  void update(const std::string &topic, std::uint64_t conn, const std::string &meta) {
    check(presence_update(get(), topic.c_str(), conn, meta.c_str()));
  }
  presence_counts counts(const std::string &topic) const {
    presence_counts c{};
    check(presence_get_counts(get(), topic.c_str(), &c));
    return c;
  }
  // The live counts of each topic, in order, in one call (presence_counts_many).
  std::vector<presence_counts> counts_many(const std::vector<std::string> &topics) const {
    std::vector<const char *> names;
    names.reserve(topics.size());
    for (const auto &t : topics) names.push_back(t.c_str());
    std::vector<presence_counts> out(topics.size());
    check(presence_counts_many(get(), names.data(), names.size(), out.data()));
    return out;
  }
  // The presence_state payload as of the last poll.
  std::string list(const std::string &topic, std::uint64_t *seq = nullptr) const {
    presence_buf buf{nullptr, 0};
    check(presence_list(get(), topic.c_str(), &buf, seq));
    return take(buf);
  }
  // The whole poll as one JSON array.
  std::string poll_diff_json() {
    presence_buf buf{nullptr, 0};
    check(presence_poll_diff(get(), &buf));
    return take(buf);
  }
  // The poll as one entry per changed topic, without parsing JSON.
  std::vector<TopicDiff> poll_diff() {
    std::vector<TopicDiff> out;
    check(presence_poll_diff_each(get(), &Engine::collect, &out));
    return out;
  }
  presence_stats stats() const {
    presence_stats s{};
    check(presence_get_stats(get(), &s));
    return s;
  }
  // The Prometheus text format of the stats, for a /metrics endpoint.
  std::string metrics() const {
    presence_buf buf{nullptr, 0};
    check(presence_metrics(get(), &buf));
    return take(buf);
  }
  int wakeup_fd() const { return presence_wakeup_fd(get()); }
  presence_engine *get() const noexcept { return engine_.get(); }

 private:
  struct Deleter {
    void operator()(presence_engine *e) const noexcept { presence_engine_free(e); }
  };
  std::unique_ptr<presence_engine, Deleter> engine_;

  static std::string take(presence_buf &buf) {
    std::string s(reinterpret_cast<const char *>(buf.data), buf.len);
    presence_buf_free(&buf);
    return s;
  }
  // The callback must not throw into C: copy out only (std::bad_alloc aside).
  static void collect(void *userdata, const presence_topic_diff *d) noexcept {
    auto *out = static_cast<std::vector<TopicDiff> *>(userdata);
    out->push_back(TopicDiff{std::string(d->topic.data, d->topic.len), d->seq, d->counts,
                             std::string(d->payload.data, d->payload.len),
                             static_cast<presence_occupancy>(d->occupancy)});
  }
};

}  // namespace presence

#endif  // PRESENCE_HPP
