/*
 * The C harness: every exported function, every status a caller can provoke, and each
 * kind of bad input, through nothing but include/presence.h. tests/c_abi.rs builds it
 * with AddressSanitizer and UndefinedBehaviorSanitizer, and again plain for valgrind.
 */
#include "presence.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int passed, failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      passed++;                                                                \
    } else {                                                                   \
      failed++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_STATUS(call, want)                                               \
  do {                                                                         \
    presence_status got_ = (call);                                             \
    if (got_ == (want)) {                                                      \
      passed++;                                                                \
    } else {                                                                   \
      char msg_[256];                                                          \
      presence_last_error_message(msg_, sizeof msg_);                          \
      failed++;                                                                \
      fprintf(stderr, "%s:%d: %s returned %s, want %s (%s)\n", __FILE__,       \
              __LINE__, #call, presence_status_name(got_),                     \
              presence_status_name(want), msg_);                               \
    }                                                                          \
  } while (0)

/* The last error message of this thread contains `part`. */
static int last_error_has(const char *part) {
  char msg[512];
  presence_last_error_message(msg, sizeof msg);
  return strstr(msg, part) != NULL;
}

static presence_engine *engine_with(const char *config) {
  presence_engine *e = NULL;
  if (presence_engine_new(config, &e) != PRESENCE_STATUS_OK) {
    fprintf(stderr, "cannot create engine with %s\n", config ? config : "NULL");
    exit(2);
  }
  return e;
}

static int fd_readable(int fd) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_lifecycle_and_version(void) {
  presence_engine *e = NULL;
  CHECK_STATUS(presence_engine_new(NULL, &e), PRESENCE_STATUS_OK);
  CHECK(e != NULL);
  presence_engine_free(e);
  e = NULL;
  CHECK_STATUS(presence_engine_new("{}", &e), PRESENCE_STATUS_OK);
  presence_engine_free(e);
  presence_engine_free(NULL); /* a no-op */

  CHECK(strcmp(presence_version(), PRESENCE_VERSION) == 0);
  CHECK(strcmp(presence_status_name(PRESENCE_STATUS_OK), "PRESENCE_STATUS_OK") == 0);
  CHECK(strcmp(presence_status_name(PRESENCE_STATUS_NOT_TRACKED), "PRESENCE_STATUS_NOT_TRACKED") == 0);
  CHECK(strcmp(presence_status_name(PRESENCE_STATUS_PANIC), "PRESENCE_STATUS_PANIC") == 0);
  CHECK(strcmp(presence_status_name(PRESENCE_STATUS_REJECTED), "PRESENCE_STATUS_REJECTED") == 0);
  CHECK(strcmp(presence_status_name(12345), "PRESENCE_STATUS_UNKNOWN") == 0);
}

static void test_bad_configs(void) {
  presence_engine *e = (presence_engine *)0x1; /* must stay untouched on failure */
  CHECK_STATUS(presence_engine_new("{\"format\":\"xml\"}", &e), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK(e == (presence_engine *)0x1);
  CHECK(last_error_has("format: unknown variant `xml`, expected `counts` or `phoenix`"));
  CHECK_STATUS(presence_engine_new("{\"max_topicz\":1}", &e), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK(last_error_has("max_topicz: unknown field `max_topicz`, expected one of `format`"));
  CHECK_STATUS(presence_engine_new("not json", &e), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK_STATUS(presence_engine_new("[1]", &e), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK_STATUS(presence_engine_new("{\"shards\":0}", &e), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK_STATUS(presence_engine_new("{\"format\":\"\xff\"}", &e), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_engine_new(NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(e == (presence_engine *)0x1);
}

static void test_null_arguments(void) {
  presence_engine *e = engine_with(NULL);
  presence_counts c;
  presence_stats s;
  presence_buf b = {NULL, 0};
  size_t removed = 99;

  CHECK_STATUS(presence_track(NULL, "t", 1, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("engine"));
  CHECK_STATUS(presence_track(e, NULL, 1, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("topic"));
  CHECK_STATUS(presence_untrack(NULL, "t", 1), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_untrack(e, NULL, 1), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_untrack_conn(NULL, 1, &removed), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(removed == 99);
  CHECK_STATUS(presence_update(NULL, "t", 1, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_update(e, NULL, 1, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_get_counts(NULL, "t", &c), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_get_counts(e, NULL, &c), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_get_counts(e, "t", NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_list(NULL, "t", &b, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_list(e, NULL, &b, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_list(e, "t", NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_diff(NULL, &b), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_diff(e, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_diff_each(NULL, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_diff_each(e, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_get_stats(NULL, &s), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_get_stats(e, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(presence_wakeup_fd(NULL) == -1);
  CHECK(b.data == NULL && b.len == 0); /* never written by a failed call */
  presence_buf_free(NULL);
  presence_buf_free(&b); /* an empty buffer is fine too */
  presence_engine_free(e);
}

static void test_bad_strings_and_limits(void) {
  presence_engine *e = engine_with("{\"max_topic_bytes\":16,\"max_key_bytes\":8,\"max_meta_bytes\":32}");
  presence_counts c;
  char long_topic[64];
  memset(long_topic, 'x', sizeof long_topic - 1);
  long_topic[sizeof long_topic - 1] = '\0';

  CHECK_STATUS(presence_track(e, "bad\xc3(", 1, NULL, NULL), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_track(e, "t", 1, "\xe2\x28\xa1", NULL), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "{\"a\":\"\xff\"}"), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_untrack(e, "\xff", 1), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_get_counts(e, "\xff", &c), PRESENCE_STATUS_INVALID_UTF8);

  CHECK_STATUS(presence_track(e, "t", 1, NULL, "[1,2]"), PRESENCE_STATUS_INVALID_META);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "\"str\""), PRESENCE_STATUS_INVALID_META);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "{\"a\":"), PRESENCE_STATUS_INVALID_META);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "{}{}"), PRESENCE_STATUS_INVALID_META);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "{\"phx_ref\":\"x\"}"), PRESENCE_STATUS_INVALID_META);
  CHECK(last_error_has("reserved"));

  CHECK_STATUS(presence_track(e, "", 1, NULL, NULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_track(e, "t", 1, "", NULL), PRESENCE_STATUS_INVALID_ARGUMENT);

  CHECK_STATUS(presence_track(e, long_topic, 1, NULL, NULL), PRESENCE_STATUS_TOO_LONG);
  CHECK(last_error_has("limit is 16"));
  CHECK_STATUS(presence_track(e, "t", 1, "a-very-long-key", NULL), PRESENCE_STATUS_TOO_LONG);
  CHECK_STATUS(presence_track(e, "t", 1, NULL, "{\"a\":\"0123456789012345678901234567890\"}"), PRESENCE_STATUS_TOO_LONG);
  CHECK_STATUS(presence_get_counts(e, long_topic, &c), PRESENCE_STATUS_TOO_LONG);

  /* None of that changed anything. */
  CHECK_STATUS(presence_get_counts(e, "t", &c), PRESENCE_STATUS_OK);
  CHECK(c.connections == 0);
  presence_engine_free(e);

  e = engine_with("{\"format\":\"phoenix\",\"viewers_key\":\"anon\"}");
  CHECK_STATUS(presence_track(e, "t", 1, "anon", NULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("anonymous"));
  presence_engine_free(e);
}

static void test_track_untrack_counts(void) {
  presence_engine *e = engine_with(NULL);
  presence_counts c;
  size_t removed = 0;

  CHECK_STATUS(presence_track(e, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 2, "alice", "{\"tab\":2}"), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 3, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:2", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 1, "bob", NULL), PRESENCE_STATUS_ALREADY_TRACKED);
  CHECK(last_error_has("already tracked"));

  CHECK_STATUS(presence_get_counts(e, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.viewers == 1 && c.users == 1 && c.connections == 3);
  CHECK_STATUS(presence_get_counts(e, "nowhere", &c), PRESENCE_STATUS_OK);
  CHECK(c.viewers == 0 && c.users == 0 && c.connections == 0);

  CHECK_STATUS(presence_untrack(e, "video:1", 2), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_untrack(e, "video:1", 2), PRESENCE_STATUS_NOT_TRACKED);
  CHECK_STATUS(presence_untrack(e, "nowhere", 2), PRESENCE_STATUS_NOT_TRACKED);
  CHECK_STATUS(presence_update(e, "video:1", 1, "{\"x\":1}"), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_update(e, "video:1", 1, "[]"), PRESENCE_STATUS_INVALID_META);
  CHECK_STATUS(presence_update(e, "video:1", 42, NULL), PRESENCE_STATUS_NOT_TRACKED);

  CHECK_STATUS(presence_untrack_conn(e, 1, &removed), PRESENCE_STATUS_OK);
  CHECK(removed == 2);
  /* Use after untrack_conn: the conn is gone everywhere. */
  CHECK_STATUS(presence_untrack(e, "video:1", 1), PRESENCE_STATUS_NOT_TRACKED);
  CHECK_STATUS(presence_update(e, "video:2", 1, NULL), PRESENCE_STATUS_NOT_TRACKED);
  CHECK_STATUS(presence_untrack_conn(e, 1, &removed), PRESENCE_STATUS_OK);
  CHECK(removed == 0);
  CHECK_STATUS(presence_untrack_conn(e, 3, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_get_counts(e, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.connections == 0);
  /* The conn can come back. */
  CHECK_STATUS(presence_track(e, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  presence_engine_free(e); /* frees what is still tracked */
}

static void test_limits_reached(void) {
  presence_engine *e = engine_with("{\"max_topics\":2,\"max_presences\":3}");
  presence_stats s;
  CHECK_STATUS(presence_track(e, "a", 1, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "b", 1, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "c", 1, NULL, NULL), PRESENCE_STATUS_LIMIT_REACHED);
  CHECK(last_error_has("topics"));
  CHECK_STATUS(presence_track(e, "a", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "a", 3, NULL, NULL), PRESENCE_STATUS_LIMIT_REACHED);
  CHECK(last_error_has("presences"));
  CHECK_STATUS(presence_get_stats(e, &s), PRESENCE_STATUS_OK);
  CHECK(s.topics == 2 && s.presences == 3 && s.bytes > 0 && s.topics_pending == 2 && s.polls == 0);
  CHECK_STATUS(presence_untrack(e, "a", 2), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "a", 3, NULL, NULL), PRESENCE_STATUS_OK);
  presence_engine_free(e);
}

static void test_poll_json_and_wakeup(void) {
  presence_engine *e = engine_with(NULL);
  presence_buf b = {NULL, 0};
  uint64_t seq = 99;
  int fd = presence_wakeup_fd(e);

  CHECK(fd >= 0);
  CHECK(!fd_readable(fd));
  CHECK_STATUS(presence_pending_topics(e, &seq), PRESENCE_STATUS_OK);
  CHECK(seq == 0);
  CHECK_STATUS(presence_pending_topics(e, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_pending_topics(NULL, &seq), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(b.len == 2 && strcmp((const char *)b.data, "[]") == 0);
  presence_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);

  CHECK_STATUS(presence_track(e, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK(fd_readable(fd));
  CHECK_STATUS(presence_pending_topics(e, &seq), PRESENCE_STATUS_OK);
  CHECK(seq == 1);
  CHECK_STATUS(presence_track(e, "video:1", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 3, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_untrack(e, "video:1", 3), PRESENCE_STATUS_OK);
  /* Before the poll, list shows what clients were last told: nothing yet. */
  CHECK_STATUS(presence_list(e, "video:1", &b, &seq), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "{\"viewers\":{\"count\":0},\"users\":{\"count\":0}}") == 0);
  CHECK(seq == 0);
  presence_buf_free(&b);

  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data,
               "[{\"topic\":\"video:1\",\"seq\":1,\"counts\":{\"viewers\":1,\"users\":1,\"connections\":2},"
               "\"occupancy\":\"occupied\",\"payload\":{\"joins\":{\"viewers\":{\"count\":1},\"users\":{\"count\":1}},"
               "\"leaves\":{\"viewers\":{\"count\":0},\"users\":{\"count\":0}}}}]") == 0);
  CHECK(b.len == strlen((const char *)b.data));
  presence_buf_free(&b);
  CHECK(!fd_readable(fd));

  CHECK_STATUS(presence_list(e, "video:1", &b, &seq), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "{\"viewers\":{\"count\":1},\"users\":{\"count\":1}}") == 0);
  CHECK(seq == 1);
  presence_buf_free(&b);
  CHECK_STATUS(presence_list(e, "video:1", &b, NULL), PRESENCE_STATUS_OK); /* seq is optional */
  presence_buf_free(&b);

  /* A join and a leave in one window cancel: the fd may wake, the poll is empty. */
  CHECK_STATUS(presence_track(e, "video:1", 9, "zed", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_untrack(e, "video:1", 9), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "[]") == 0);
  presence_buf_free(&b);
  presence_engine_free(e);
}

struct collected {
  int calls;
  char topics[4][32];
  uint64_t seqs[4];
  presence_counts counts[4];
  char payload[512];
  presence_engine *engine;
  presence_status reentrant;
};

static void collect(void *userdata, const presence_topic_diff *d) {
  struct collected *c = (struct collected *)userdata;
  if (c->calls < 4) {
    snprintf(c->topics[c->calls], sizeof c->topics[0], "%.*s", (int)d->topic.len, d->topic.data);
    c->seqs[c->calls] = d->seq;
    c->counts[c->calls] = d->counts;
    snprintf(c->payload, sizeof c->payload, "%.*s", (int)d->payload.len, d->payload.data);
  }
  /* No lock is held: calling back into the engine must work. */
  c->reentrant = presence_track(c->engine, "from-callback", 1000 + (uint64_t)c->calls, NULL, NULL);
  c->calls++;
}

static void test_poll_each_phoenix(void) {
  presence_engine *e = engine_with("{\"format\":\"phoenix\"}");
  struct collected c;
  presence_buf b = {NULL, 0};
  memset(&c, 0, sizeof c);
  c.engine = e;

  CHECK_STATUS(presence_track(e, "room", 1, "alice", "{\"status\":\"online\"}"), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "room", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff_each(e, collect, &c), PRESENCE_STATUS_OK);
  CHECK(c.calls == 1);
  CHECK(strcmp(c.topics[0], "room") == 0 && c.seqs[0] == 1);
  CHECK(c.counts[0].viewers == 1 && c.counts[0].users == 1 && c.counts[0].connections == 2);
  CHECK(strstr(c.payload, "\"alice\":{\"metas\":[{\"phx_ref\":\"") != NULL);
  CHECK(strstr(c.payload, "\"status\":\"online\"}]}") != NULL);
  CHECK(strstr(c.payload, "\"viewers\":{\"metas\":[{\"phx_ref\":\"") != NULL);
  CHECK(strstr(c.payload, "\"leaves\":{}") != NULL);
  CHECK(c.reentrant == PRESENCE_STATUS_OK);

  CHECK_STATUS(presence_update(e, "room", 1, "{\"status\":\"away\"}"), PRESENCE_STATUS_OK);
  memset(c.payload, 0, sizeof c.payload);
  c.calls = 0;
  CHECK_STATUS(presence_poll_diff_each(e, collect, &c), PRESENCE_STATUS_OK);
  CHECK(c.calls == 2); /* "room" and "from-callback" */
  CHECK_STATUS(presence_list(e, "room", &b, NULL), PRESENCE_STATUS_OK);
  CHECK(strstr((const char *)b.data, "\"phx_ref_prev\":") != NULL);
  CHECK(strstr((const char *)b.data, "\"status\":\"away\"") != NULL);
  CHECK(strstr((const char *)b.data, "online") == NULL);
  presence_buf_free(&b);
  presence_engine_free(e);
}

static void test_last_error_message(void) {
  presence_engine *e = engine_with(NULL);
  char small[8];
  size_t need;
  CHECK_STATUS(presence_untrack(e, "t", 7), PRESENCE_STATUS_NOT_TRACKED);
  need = presence_last_error_message(NULL, 0);
  CHECK(need > sizeof small);
  CHECK(presence_last_error_message(small, sizeof small) == need);
  CHECK(strlen(small) == sizeof small - 1); /* truncated and terminated */
  CHECK(presence_last_error_message(small, 0) == need);
  presence_engine_free(e);
}

static void test_io_failure_when_out_of_descriptors(void) {
  struct rlimit old, none;
  presence_engine *e = (presence_engine *)0x1;
  getrlimit(RLIMIT_NOFILE, &old);
  none = old;
  none.rlim_cur = 0;
  if (setrlimit(RLIMIT_NOFILE, &none) != 0) {
    fprintf(stderr, "skipping: cannot lower RLIMIT_NOFILE\n");
    return;
  }
  CHECK_STATUS(presence_engine_new(NULL, &e), PRESENCE_STATUS_IO);
  setrlimit(RLIMIT_NOFILE, &old);
  CHECK(e == (presence_engine *)0x1);
}

/* A tiny in-memory bus: messages published by one node, in order. */
struct bus {
  int count;
  size_t lens[64];
  uint8_t *msgs[64];
};

static void publish(void *userdata, const uint8_t *data, size_t len) {
  struct bus *b = (struct bus *)userdata;
  if (b->count < 64) {
    b->msgs[b->count] = (uint8_t *)malloc(len);
    memcpy(b->msgs[b->count], data, len);
    b->lens[b->count] = len;
    b->count++;
  }
}

static void deliver(struct bus *b, presence_engine *to) {
  int i;
  for (i = 0; i < b->count; i++) {
    CHECK_STATUS(presence_cluster_ingest(to, b->msgs[i], b->lens[i]), PRESENCE_STATUS_OK);
  }
}

static void bus_clear(struct bus *b) {
  int i;
  for (i = 0; i < b->count; i++) free(b->msgs[i]);
  b->count = 0;
}

static void test_cluster(void) {
  const char *cfg_a = "{\"cluster\":{\"node\":\"a\",\"secret\":\"0123456789abcdef0123\"}}";
  const char *cfg_b = "{\"cluster\":{\"node\":\"b\",\"secret\":\"0123456789abcdef0123\"}}";
  presence_engine *a = engine_with(cfg_a), *b = engine_with(cfg_b), *single = engine_with(NULL);
  struct bus bus;
  presence_counts c;
  presence_cluster_stats s;
  uint8_t junk[40];
  memset(&bus, 0, sizeof bus);
  memset(junk, 7, sizeof junk);

  CHECK_STATUS(presence_track(a, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(b, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(b, "video:1", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_cluster_tick(a, publish, &bus), PRESENCE_STATUS_OK);
  CHECK(bus.count >= 1);
  deliver(&bus, b);
  deliver(&bus, a); /* a node's own echo is ignored */
  bus_clear(&bus);
  CHECK_STATUS(presence_cluster_tick(b, publish, &bus), PRESENCE_STATUS_OK);
  deliver(&bus, a);
  bus_clear(&bus);
  CHECK_STATUS(presence_get_counts(a, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.users == 1 && c.viewers == 1 && c.connections == 3); /* alice counts once */
  CHECK_STATUS(presence_get_counts(b, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.users == 1 && c.viewers == 1 && c.connections == 3);

  CHECK_STATUS(presence_cluster_ingest(a, junk, sizeof junk), PRESENCE_STATUS_REJECTED);
  CHECK(last_error_has("authentication"));
  CHECK_STATUS(presence_cluster_ingest(a, NULL, 5), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_cluster_ingest(a, NULL, 0), PRESENCE_STATUS_REJECTED);
  CHECK_STATUS(presence_cluster_get_stats(a, &s), PRESENCE_STATUS_OK);
  CHECK(s.nodes == 1 && s.rejected_unauthenticated == 2 && s.messages_sent >= 1 && s.incarnation != 0);

  /* After a reconnection: ask everyone for a snapshot; b answers at its next tick. */
  CHECK_STATUS(presence_cluster_resync(a, publish, &bus), PRESENCE_STATUS_OK);
  CHECK(bus.count == 1);
  deliver(&bus, b);
  bus_clear(&bus);
  CHECK_STATUS(presence_cluster_tick(b, publish, &bus), PRESENCE_STATUS_OK);
  deliver(&bus, a);
  bus_clear(&bus);
  CHECK_STATUS(presence_get_counts(a, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.users == 1 && c.viewers == 1 && c.connections == 3);
  CHECK_STATUS(presence_cluster_get_stats(b, &s), PRESENCE_STATUS_OK);
  CHECK(s.snapshots_sent == 2);

  CHECK_STATUS(presence_cluster_leave(b, publish, &bus), PRESENCE_STATUS_OK);
  CHECK(bus.count == 1);
  deliver(&bus, a);
  bus_clear(&bus);
  CHECK_STATUS(presence_get_counts(a, "video:1", &c), PRESENCE_STATUS_OK);
  CHECK(c.users == 1 && c.viewers == 0 && c.connections == 1);

  CHECK_STATUS(presence_cluster_tick(single, publish, &bus), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_cluster_ingest(single, junk, sizeof junk), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_cluster_leave(single, publish, &bus), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_cluster_resync(single, publish, &bus), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_cluster_get_stats(single, &s), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_redis_start(single, "redis://127.0.0.1:1/", "presence"), PRESENCE_STATUS_NO_CLUSTER);
  CHECK_STATUS(presence_cluster_tick(a, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_cluster_get_stats(a, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_engine_new("{\"cluster\":{\"node\":\"a\",\"secret\":\"short\"}}", &single),
               PRESENCE_STATUS_INVALID_CONFIG);

  CHECK_STATUS(presence_redis_start(a, "not a url", "presence"), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_redis_start(a, NULL, "presence"), PRESENCE_STATUS_NULL_ARGUMENT);
  /* Nothing listens on port 1: the link retries in the background until stopped. */
  CHECK_STATUS(presence_redis_start(a, "redis://127.0.0.1:1/", "presence"), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_redis_stop(a), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_redis_stop(a), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_redis_start(b, "redis://127.0.0.1:1/", "presence"), PRESENCE_STATUS_OK);
  presence_engine_free(b); /* stops the link too */
  presence_engine_free(a);
  presence_engine_free(single);
}

/* Whether the counts are these three numbers. */
static int counts_are(presence_counts c, uint64_t viewers, uint64_t users, uint64_t connections) {
  return c.viewers == viewers && c.users == users && c.connections == connections;
}

static void test_counts_many(void) {
  presence_engine *e = engine_with("{\"max_topic_bytes\":16}");
  const char *topics[5] = {"video:1", "nowhere", "video:2", "video:1", NULL};
  const char *bad_utf8[3] = {"video:1", "ok", "bad\xc3("};
  const char *empty[2] = {"video:1", ""};
  const char *too_long[2] = {"a-topic-of-more-than-16-bytes", ""};
  presence_counts out[5];
  presence_counts untouched = {77, 77, 77};
  size_t i;

  CHECK_STATUS(presence_track(e, "video:1", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 2, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:1", 3, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "video:2", 4, "bob", NULL), PRESENCE_STATUS_OK);

  CHECK_STATUS(presence_counts_many(e, topics, 4, out), PRESENCE_STATUS_OK);
  CHECK(counts_are(out[0], 1, 1, 3));
  CHECK(counts_are(out[1], 0, 0, 0)); /* an unknown topic */
  CHECK(counts_are(out[2], 0, 1, 1));
  CHECK(counts_are(out[3], 1, 1, 3)); /* asked twice */
  for (i = 0; i < 4; i++) {
    presence_counts one;
    CHECK_STATUS(presence_get_counts(e, topics[i], &one), PRESENCE_STATUS_OK);
    CHECK(counts_are(one, out[i].viewers, out[i].users, out[i].connections));
  }
  /* Nothing asked: NULL arrays are fine. */
  CHECK_STATUS(presence_counts_many(e, NULL, 0, NULL), PRESENCE_STATUS_OK);

  /* Every refusal writes nothing and names the first bad topic. */
  for (i = 0; i < 5; i++) out[i] = untouched;
  CHECK_STATUS(presence_counts_many(NULL, topics, 4, out), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("engine"));
  CHECK_STATUS(presence_counts_many(e, NULL, 4, out), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("topics"));
  CHECK_STATUS(presence_counts_many(e, topics, 4, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("out"));
  CHECK_STATUS(presence_counts_many(e, topics, 5, out), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("topics[4]"));
  CHECK_STATUS(presence_counts_many(e, bad_utf8, 3, out), PRESENCE_STATUS_INVALID_UTF8);
  CHECK(last_error_has("topics[2]"));
  CHECK_STATUS(presence_counts_many(e, empty, 2, out), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("topics[1]"));
  CHECK_STATUS(presence_counts_many(e, too_long, 2, out), PRESENCE_STATUS_TOO_LONG);
  CHECK(last_error_has("topics[0]"));
  for (i = 0; i < 5; i++) CHECK(counts_are(out[i], 77, 77, 77));
  presence_engine_free(e);
}

/* Whether `text` holds `line` as a whole line. */
static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  const char *p = text;
  while ((p = strstr(p, line)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    p += n;
  }
  return 0;
}

static void test_metrics(void) {
  presence_engine *e = engine_with("{\"format\":\"phoenix\"}");
  presence_engine *a = engine_with("{\"cluster\":{\"node\":\"a\",\"secret\":\"0123456789abcdef0123\"}}");
  presence_buf b = {NULL, 0};
  presence_buf diffs = {NULL, 0};
  presence_stats s;
  char line[128];
  uint8_t junk[40];
  memset(junk, 7, sizeof junk);

  CHECK_STATUS(presence_track(e, "room", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "room", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff(e, &diffs), PRESENCE_STATUS_OK);
  presence_buf_free(&diffs);
  CHECK_STATUS(presence_poll_diff(e, &diffs), PRESENCE_STATUS_OK); /* an empty poll counts */
  presence_buf_free(&diffs);
  CHECK_STATUS(presence_get_stats(e, &s), PRESENCE_STATUS_OK);
  CHECK(s.polls == 2);

  CHECK_STATUS(presence_metrics(e, &b), PRESENCE_STATUS_OK);
  CHECK(b.data != NULL && b.len == strlen((const char *)b.data));
  CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
  CHECK(has_line((const char *)b.data, "# TYPE presence_polls_total counter"));
  CHECK(has_line((const char *)b.data, "presence_polls_total 2"));
  CHECK(has_line((const char *)b.data, "# TYPE presence_presences gauge"));
  CHECK(has_line((const char *)b.data, "presence_presences 2"));
  CHECK(has_line((const char *)b.data, "presence_topics 1"));
  snprintf(line, sizeof line, "presence_heap_bytes %llu", (unsigned long long)s.bytes);
  CHECK(has_line((const char *)b.data, line));
  snprintf(line, sizeof line, "presence_info{version=\"%s\",format=\"phoenix\"} 1", PRESENCE_VERSION);
  CHECK(has_line((const char *)b.data, line));
  CHECK(strstr((const char *)b.data, "presence_cluster") == NULL);
  presence_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);

  /* Cluster mode adds the replication counters, refused messages by cause. */
  CHECK_STATUS(presence_cluster_ingest(a, junk, sizeof junk), PRESENCE_STATUS_REJECTED);
  CHECK_STATUS(presence_metrics(a, &b), PRESENCE_STATUS_OK);
  CHECK(has_line((const char *)b.data, "presence_cluster_messages_rejected_total{cause=\"unauthenticated\"} 1"));
  CHECK(has_line((const char *)b.data, "presence_cluster_messages_rejected_total{cause=\"replayed\"} 0"));
  CHECK(has_line((const char *)b.data, "presence_cluster_messages_received_total 1"));
  CHECK(has_line((const char *)b.data, "presence_cluster_link_up 1"));
  CHECK(has_line((const char *)b.data, "presence_cluster_nodes{state=\"live\"} 0"));
  presence_buf_free(&b);

  CHECK_STATUS(presence_metrics(NULL, &b), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("engine"));
  CHECK_STATUS(presence_metrics(e, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("out"));
  CHECK(b.data == NULL && b.len == 0);
  presence_engine_free(a);
  presence_engine_free(e);
}

/* The span `sp` of a ready batch's text, compared with `want`. */
static int span_is(const presence_ready *r, presence_span sp, const char *want) {
  return sp.len == strlen(want) && sp.offset + sp.len <= r->text.len &&
         memcmp(r->text.data + sp.offset, want, sp.len) == 0;
}

/* The message of `d` is `before`, then its payload span, then `after`. */
static int message_wraps(const presence_ready *r, const presence_ready_diff *d, const char *before,
                         const char *after) {
  size_t nb = strlen(before), na = strlen(after);
  const uint8_t *m = r->text.data + d->message.offset;
  return d->message.len == nb + d->payload.len + na && d->payload.offset == d->message.offset + nb &&
         memcmp(m, before, nb) == 0 && memcmp(m + nb + d->payload.len, after, na) == 0;
}

static int starts_with(const void *data, const char *prefix) {
  return memcmp(data, prefix, strlen(prefix)) == 0;
}

static void test_ready_messages(void) {
  presence_engine *e = engine_with("{\"format\":\"phoenix\"}");
  presence_ready r = {{NULL, 0}, NULL, 0};
  presence_buf b = {NULL, 0};
  uint64_t seq = 99;
  const presence_ready_diff *d;

  /* Bad envelopes are refused before anything is polled. */
  CHECK_STATUS(presence_track(e, "room:1", 1, "al\xc3\xa9", "{\"n\":1}"), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_ready(e, 3, NULL, &r), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("envelope"));
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_EVENT, "1", &r), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("join_ref"));
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_PHOENIX_V2, "\xff", &r), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_EVENT, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_ready(NULL, PRESENCE_ENVELOPE_EVENT, NULL, &r), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(r.text.data == NULL && r.diffs == NULL && r.count == 0);
  CHECK_STATUS(presence_pending_topics(e, &seq), PRESENCE_STATUS_OK);
  CHECK(seq == 1);

  /* The Event envelope: the topic, then the message around its payload. */
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_EVENT, NULL, &r), PRESENCE_STATUS_OK);
  CHECK(r.count == 1 && r.diffs != NULL);
  d = &r.diffs[0];
  CHECK(d->seq == 1 && d->counts.users == 1 && d->counts.connections == 1);
  CHECK(span_is(&r, d->topic, "room:1"));
  CHECK(message_wraps(&r, d, "{\"event\":\"presence_diff\",\"topic\":\"room:1\",\"seq\":1,\"payload\":", "}"));
  CHECK(starts_with(r.text.data + d->payload.offset, "{\"joins\":{\"al\xc3\xa9\":{\"metas\":[{\"phx_ref\":"));
  /* The UTF-16 spans: the text up to the payload is ASCII; "é" is 2 bytes, 1 unit. */
  CHECK(d->topic_utf16.offset == 0 && d->topic_utf16.len == 6);
  CHECK(d->message_utf16.offset == 6 && d->message_utf16.len == d->message.len - 1);
  CHECK(d->payload_utf16.offset == d->payload.offset && d->payload_utf16.len == d->payload.len - 1);
  CHECK(r.text.data[r.text.len] == '\0');
  presence_ready_free(&r);
  CHECK(r.text.data == NULL && r.diffs == NULL && r.count == 0);
  presence_ready_free(&r);
  presence_ready_free(NULL);

  /* Idle: no diffs, an empty text. */
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_NONE, NULL, &r), PRESENCE_STATUS_OK);
  CHECK(r.count == 0 && r.diffs == NULL && r.text.len == 0);
  presence_ready_free(&r);

  /* Phoenix V2 frames, after the UTF-16 offsets moved past the "é" of the first topic;
     without an envelope, the payload alone. */
  CHECK_STATUS(presence_untrack(e, "room:1", 1), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "room:2", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_PHOENIX_V2, "7", &r), PRESENCE_STATUS_OK);
  CHECK(r.count == 2);
  for (size_t i = 0; i < r.count; i++) {
    d = &r.diffs[i];
    if (span_is(&r, d->topic, "room:1")) {
      CHECK(d->seq == 2 && d->counts.connections == 0);
      CHECK(message_wraps(&r, d, "[\"7\",null,\"room:1\",\"presence_diff\",", "]"));
      CHECK(starts_with(r.text.data + d->payload.offset, "{\"joins\":{},\"leaves\":{\"al\xc3\xa9\":"));
    } else {
      CHECK(span_is(&r, d->topic, "room:2"));
      CHECK(d->seq == 1 && d->counts.viewers == 1);
      CHECK(message_wraps(&r, d, "[\"7\",null,\"room:2\",\"presence_diff\",", "]"));
      CHECK(starts_with(r.text.data + d->payload.offset, "{\"joins\":{\"viewers\":{\"metas\":[{\"phx_ref\":"));
    }
    CHECK(d->topic_utf16.len == 6 && d->topic_utf16.offset + 6 == d->message_utf16.offset);
  }
  /* Exactly one "é" (in the first topic's payload) lies before the end of the text. */
  d = &r.diffs[r.count - 1];
  CHECK(d->message_utf16.offset + d->message_utf16.len == r.text.len - 1);
  presence_ready_free(&r);
  CHECK_STATUS(presence_track(e, "room:2", 3, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_NONE, NULL, &r), PRESENCE_STATUS_OK);
  CHECK(r.count == 1 && r.diffs[0].message.len == 0 && r.diffs[0].message_utf16.len == 0);
  CHECK(starts_with(r.text.data + r.diffs[0].payload.offset, "{\"joins\":{\"viewers\":{\"metas\":[{\"phx_ref\":"));
  CHECK(r.diffs[0].payload.offset == 6 && r.diffs[0].payload.offset + r.diffs[0].payload.len == r.text.len);
  presence_ready_free(&r);

  /* The state of a joining client, with its seq. */
  CHECK_STATUS(presence_state_message(e, "room:2", PRESENCE_ENVELOPE_PHOENIX_V2, "12", &b, &seq), PRESENCE_STATUS_OK);
  CHECK(seq == 2);
  CHECK(starts_with(b.data, "[\"12\",null,\"room:2\",\"presence_state\",{\"viewers\":{\"metas\":[{\"phx_ref\":"));
  CHECK(strcmp((const char *)b.data + b.len - 5, "}]}}]") == 0);
  presence_buf_free(&b);
  CHECK_STATUS(presence_state_message(e, "nowhere", PRESENCE_ENVELOPE_EVENT, NULL, &b, NULL), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "{\"event\":\"presence_state\",\"topic\":\"nowhere\",\"seq\":0,\"payload\":{}}") == 0);
  presence_buf_free(&b);
  CHECK_STATUS(presence_state_message(e, "room:2", PRESENCE_ENVELOPE_NONE, NULL, &b, NULL), PRESENCE_STATUS_OK);
  CHECK(starts_with(b.data, "{\"viewers\":{\"metas\":["));
  presence_buf_free(&b);
  CHECK_STATUS(presence_state_message(e, "room:2", PRESENCE_ENVELOPE_NONE, "1", &b, NULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_state_message(e, "room:2", 9, NULL, &b, NULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_state_message(e, NULL, PRESENCE_ENVELOPE_EVENT, NULL, &b, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_state_message(e, "room:2", PRESENCE_ENVELOPE_EVENT, NULL, NULL, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_state_message(e, "", PRESENCE_ENVELOPE_EVENT, NULL, &b, NULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(b.data == NULL);
  presence_engine_free(e);
}

/* Waits up to `ms` for `fd` to turn readable. */
/* UTF-16 code units of `n` bytes of UTF-8 holding no character beyond the BMP. */
static uint64_t utf16_units(const uint8_t *s, size_t n) {
  uint64_t units = 0;
  for (size_t i = 0; i < n; i++) units += (s[i] & 0xc0) != 0x80;
  return units;
}

/* A span of `text` (`len` bytes) that lies inside it, with its UTF-16 twin where the
   text says. */
static int spans_agree(const uint8_t *text, size_t len, presence_span sp, presence_span sp16) {
  return sp.offset + sp.len <= len && sp16.offset == utf16_units(text, sp.offset) &&
         sp16.len == utf16_units(text + sp.offset, sp.len);
}

static void test_ready_batch(void) {
  presence_engine *a = engine_with(NULL), *b = engine_with(NULL);
  presence_ready_batch *batch = NULL;
  presence_ready_view v = {{NULL, 0}, NULL, 0};
  presence_ready r = {{NULL, 0}, NULL, 0};
  uint64_t pending = 0;
  char topic[32];

  CHECK_STATUS(presence_ready_batch_new(NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_ready_batch_new(&batch), PRESENCE_STATUS_OK);
  CHECK(batch != NULL);

  /* Bad arguments are refused before anything is polled, and the view is not written. */
  CHECK_STATUS(presence_track(a, "r:\xc3\xa9", 1, "al", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(b, "r:\xc3\xa9", 1, "al", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_ready_into(NULL, PRESENCE_ENVELOPE_EVENT, NULL, batch, &v), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(presence_poll_ready_into(a, PRESENCE_ENVELOPE_EVENT, NULL, NULL, &v), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("batch"));
  CHECK_STATUS(presence_poll_ready_into(a, PRESENCE_ENVELOPE_EVENT, NULL, batch, NULL), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("out"));
  CHECK_STATUS(presence_poll_ready_into(a, 3, NULL, batch, &v), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_poll_ready_into(a, PRESENCE_ENVELOPE_EVENT, "1", batch, &v), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_poll_ready_into(a, PRESENCE_ENVELOPE_PHOENIX_V2, "\xff", batch, &v), PRESENCE_STATUS_INVALID_UTF8);
  CHECK(v.text.data == NULL && v.diffs == NULL && v.count == 0);
  CHECK_STATUS(presence_pending_topics(a, &pending), PRESENCE_STATUS_OK);
  CHECK(pending == 1);

  /* Polls of growing, then shrinking, sizes into the one batch: each gives what
     presence_poll_ready gives for the same changes (b has them too), with every span
     inside the text and UTF-16 spans that count the "é" of the topics (round 2 has only
     ASCII topics). */
  for (int round = 0; round < 4; round++) {
    const int n = round == 1 ? 300 : round == 3 ? 2 : 40;
    const uint32_t envelope = round == 2 ? PRESENCE_ENVELOPE_PHOENIX_V2 : round == 3 ? PRESENCE_ENVELOPE_NONE
                                                                                     : PRESENCE_ENVELOPE_EVENT;
    for (int i = 0; i < n; i++) {
      snprintf(topic, sizeof topic, round == 2 ? "r%d:%d" : "r%d:\xc3\xa9%d", round, i);
      CHECK_STATUS(presence_track(a, topic, 1000u * (unsigned)round + (unsigned)i, i % 2 ? "k" : NULL, NULL),
                   PRESENCE_STATUS_OK);
      CHECK_STATUS(presence_track(b, topic, 1000u * (unsigned)round + (unsigned)i, i % 2 ? "k" : NULL, NULL),
                   PRESENCE_STATUS_OK);
    }
    CHECK_STATUS(presence_poll_ready_into(a, envelope, NULL, batch, &v), PRESENCE_STATUS_OK);
    CHECK_STATUS(presence_poll_ready(b, envelope, NULL, &r), PRESENCE_STATUS_OK);
    CHECK(v.count == (size_t)n + (round == 0) && v.count == r.count && v.diffs != NULL);
    CHECK(v.text.len == r.text.len);
    for (size_t j = 0; j < v.count; j++) {
      const presence_ready_diff *d = &v.diffs[j], *e = NULL;
      const uint8_t *text = (const uint8_t *)v.text.data;
      CHECK(spans_agree(text, v.text.len, d->topic, d->topic_utf16));
      CHECK(spans_agree(text, v.text.len, d->payload, d->payload_utf16));
      CHECK(spans_agree(text, v.text.len, d->message, d->message_utf16));
      CHECK(envelope == PRESENCE_ENVELOPE_NONE ? d->message.len == 0 && d->payload.offset == d->topic.offset + d->topic.len
                                               : d->message.offset == d->topic.offset + d->topic.len &&
                                                     d->payload.offset > d->message.offset &&
                                                     d->payload.offset + d->payload.len < d->message.offset + d->message.len);
      for (size_t k = 0; k < r.count && e == NULL; k++) {
        if (r.diffs[k].topic.len == d->topic.len &&
            memcmp(r.text.data + r.diffs[k].topic.offset, text + d->topic.offset, d->topic.len) == 0)
          e = &r.diffs[k];
      }
      CHECK(e != NULL);
      if (e == NULL) continue;
      CHECK(d->seq == e->seq && d->occupancy == e->occupancy && d->counts.viewers == e->counts.viewers &&
            d->counts.users == e->counts.users && d->counts.connections == e->counts.connections);
      CHECK(d->message.len == e->message.len && d->payload.len == e->payload.len);
      CHECK(memcmp(text + d->message.offset, r.text.data + e->message.offset, d->message.len) == 0);
      CHECK(memcmp(text + d->payload.offset, r.text.data + e->payload.offset, d->payload.len) == 0);
    }
    presence_ready_free(&r);
  }

  /* Idle: no diffs, an empty text. */
  CHECK_STATUS(presence_poll_ready_into(a, PRESENCE_ENVELOPE_EVENT, NULL, batch, &v), PRESENCE_STATUS_OK);
  CHECK(v.count == 0 && v.diffs == NULL && v.text.len == 0);

  presence_ready_batch_free(batch);
  presence_ready_batch_free(NULL);
  presence_engine_free(a);
  presence_engine_free(b);
}

static int fd_readable_within(int fd, int ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void test_ttl(void) {
  presence_engine *e = engine_with(NULL);
  presence_counts c;
  presence_buf b = {NULL, 0};
  size_t renewed = 99;

  CHECK_STATUS(presence_track_ttl(NULL, "t", 1, NULL, NULL, 1000), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("engine"));
  CHECK_STATUS(presence_track_ttl(e, NULL, 1, NULL, NULL, 1000), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("topic"));
  CHECK_STATUS(presence_track_ttl(e, "\xff", 1, NULL, NULL, 1000), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_track_ttl(e, "t", 1, "\xc3(", NULL, 1000), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_track_ttl(e, "t", 1, NULL, "{\"a\":\"\xff\"}", 1000), PRESENCE_STATUS_INVALID_UTF8);
  CHECK_STATUS(presence_track_ttl(e, "", 1, NULL, NULL, 1000), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_track_ttl(e, "t", 1, NULL, NULL, 0), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("ttl"));
  CHECK_STATUS(presence_track_ttl(e, "t", 1, NULL, NULL, 2592000001ULL), PRESENCE_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(presence_touch(NULL, 1, &renewed), PRESENCE_STATUS_NULL_ARGUMENT);
  CHECK(renewed == 99); /* never written by a failed call */
  CHECK_STATUS(presence_get_counts(e, "t", &c), PRESENCE_STATUS_OK);
  CHECK(c.connections == 0);

  /* One touch renews every TTL presence of the connection; untrack works as usual. */
  CHECK_STATUS(presence_track_ttl(e, "a", 1, "alice", NULL, 60000), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track_ttl(e, "b", 1, "alice", "{\"k\":1}", 60000), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track_ttl(e, "a", 1, NULL, NULL, 60000), PRESENCE_STATUS_ALREADY_TRACKED);
  CHECK_STATUS(presence_track(e, "c", 1, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_touch(e, 1, &renewed), PRESENCE_STATUS_OK);
  CHECK(renewed == 2);
  CHECK_STATUS(presence_touch(e, 1, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_touch(e, 42, &renewed), PRESENCE_STATUS_OK);
  CHECK(renewed == 0);
  CHECK_STATUS(presence_untrack(e, "a", 1), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_touch(e, 1, &renewed), PRESENCE_STATUS_OK);
  CHECK(renewed == 1);
  size_t removed = 0;
  CHECK_STATUS(presence_untrack_conn(e, 1, &removed), PRESENCE_STATUS_OK);
  CHECK(removed == 2);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  presence_buf_free(&b);
  /* Renewals and untracks are no expiries. */
  presence_stats st;
  CHECK_STATUS(presence_get_stats(e, &st), PRESENCE_STATUS_OK);
  CHECK(st.expired == 0);

  /* An expiry wakes the descriptor by itself, and the next poll shows the leave. */
  int fd = presence_wakeup_fd(e);
  CHECK_STATUS(presence_track_ttl(e, "inbox", 7, "bob", NULL, 30), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  presence_buf_free(&b);
  CHECK(!fd_readable(fd));
  CHECK(fd_readable_within(fd, 10000));
  CHECK_STATUS(presence_get_counts(e, "inbox", &c), PRESENCE_STATUS_OK);
  CHECK(c.users == 0 && c.connections == 0);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(b.data != NULL && strstr((const char *)b.data, "\"leaves\":{\"viewers\":{\"count\":0},\"users\":{\"count\":1}}") != NULL);
  presence_buf_free(&b);
  CHECK_STATUS(presence_get_stats(e, &st), PRESENCE_STATUS_OK);
  CHECK(st.expired == 1 && st.presences == 0);
  CHECK_STATUS(presence_touch(e, 7, &renewed), PRESENCE_STATUS_OK);
  CHECK(renewed == 0);
  presence_engine_free(e);
}

/* The last occupancy a poll_diff_each callback saw, and how many calls. */
struct occupancy_seen {
  int calls;
  uint64_t occupancy;
  uint64_t connections;
};

static void see_occupancy(void *userdata, const presence_topic_diff *d) {
  struct occupancy_seen *seen = (struct occupancy_seen *)userdata;
  seen->calls++;
  seen->occupancy = d->occupancy;
  seen->connections = d->counts.connections;
}

/*
 * The leave grace: a reload (a leave, then the same key back) within the window sends
 * nothing; a leave without a rejoin comes out at the first poll after the window, and the
 * wake-up descriptor turns readable then. Occupancy in each poll form.
 */
static void test_leave_grace_and_occupancy(void) {
  /* A window no run of this harness outlasts, for the reloads. */
  presence_engine *e = engine_with("{\"leave_grace_ms\":600000}");
  presence_engine *quick;
  presence_ready r = {{NULL, 0}, NULL, 0};
  presence_buf b = {NULL, 0};
  presence_counts c;
  struct occupancy_seen seen;
  uint64_t pending = 9;
  int fd;

  CHECK_STATUS(presence_engine_new("{\"leave_grace_ms\":-1}", &quick), PRESENCE_STATUS_INVALID_CONFIG);
  CHECK(last_error_has("leave_grace_ms"));
  CHECK_STATUS(presence_engine_new("{\"leave_grace_ms\":3600001}", &quick), PRESENCE_STATUS_INVALID_CONFIG);

  CHECK_STATUS(presence_track(e, "room", 1, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "room", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_ready(e, PRESENCE_ENVELOPE_NONE, NULL, &r), PRESENCE_STATUS_OK);
  CHECK(r.count == 1 && r.diffs[0].occupancy == PRESENCE_OCCUPANCY_OCCUPIED);
  presence_ready_free(&r);

  CHECK_STATUS(presence_untrack_conn(e, 1, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_untrack(e, "room", 2), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_get_counts(e, "room", &c), PRESENCE_STATUS_OK);
  CHECK(c.viewers == 1 && c.users == 1 && c.connections == 2); /* held, still counted */
  CHECK_STATUS(presence_untrack(e, "room", 2), PRESENCE_STATUS_NOT_TRACKED);
  CHECK_STATUS(presence_track(e, "room", 3, "alice", NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_track(e, "room", 4, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_get_counts(e, "room", &c), PRESENCE_STATUS_OK);
  CHECK(c.viewers == 1 && c.users == 1 && c.connections == 2);
  CHECK_STATUS(presence_pending_topics(e, &pending), PRESENCE_STATUS_OK);
  CHECK(pending == 0);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "[]") == 0);
  presence_buf_free(&b);
  /* Held leaves keep the topic occupied. */
  CHECK_STATUS(presence_untrack_conn(e, 3, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_untrack_conn(e, 4, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff(e, &b), PRESENCE_STATUS_OK);
  CHECK(strcmp((const char *)b.data, "[]") == 0);
  presence_buf_free(&b);
  presence_engine_free(e);

  /* A short window: the leave comes out once it ends, and the descriptor says when. */
  quick = engine_with("{\"leave_grace_ms\":100}");
  fd = presence_wakeup_fd(quick);
  CHECK(fd >= 0);
  CHECK_STATUS(presence_track(quick, "room", 1, NULL, NULL), PRESENCE_STATUS_OK);
  memset(&seen, 0, sizeof seen);
  CHECK_STATUS(presence_poll_diff_each(quick, see_occupancy, &seen), PRESENCE_STATUS_OK);
  CHECK(seen.calls == 1 && seen.occupancy == PRESENCE_OCCUPANCY_OCCUPIED);
  CHECK(!fd_readable(fd));
  CHECK_STATUS(presence_untrack(quick, "room", 1), PRESENCE_STATUS_OK);
  {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    CHECK(poll(&p, 1, 10000) == 1); /* readable when the leave is due */
  }
  memset(&seen, 0, sizeof seen);
  CHECK_STATUS(presence_poll_diff_each(quick, see_occupancy, &seen), PRESENCE_STATUS_OK);
  CHECK(seen.calls == 1 && seen.occupancy == PRESENCE_OCCUPANCY_VACATED && seen.connections == 0);
  CHECK(!fd_readable(fd));
  CHECK_STATUS(presence_track(quick, "room", 2, NULL, NULL), PRESENCE_STATUS_OK);
  CHECK_STATUS(presence_poll_diff(quick, &b), PRESENCE_STATUS_OK);
  CHECK(strstr((const char *)b.data, "\"occupancy\":\"occupied\",\"payload\":") != NULL);
  presence_buf_free(&b);
  presence_engine_free(quick);
}

int main(void) {
  test_lifecycle_and_version();
  test_bad_configs();
  test_null_arguments();
  test_bad_strings_and_limits();
  test_track_untrack_counts();
  test_limits_reached();
  test_poll_json_and_wakeup();
  test_poll_each_phoenix();
  test_ready_messages();
  test_ready_batch();
  test_counts_many();
  test_metrics();
  test_last_error_message();
  test_cluster();
  test_ttl();
  test_leave_grace_and_occupancy();
  test_io_failure_when_out_of_descriptors();
  printf("c harness: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
