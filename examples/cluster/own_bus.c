/*
 * own_bus: two cluster nodes that share presence over the host's own bus instead of
 * Redis. Here the bus is a Unix datagram socket pair and each node runs in its own
 * thread; in a real deployment it is whatever pub/sub the servers already use (NATS,
 * Kafka, a message queue, UDP...). The engine only needs two things from the host:
 *
 *   every tick_ms:      presence_cluster_tick(engine, publish, bus)  -> send each message
 *   on each message:    presence_cluster_ingest(engine, data, len)
 */
#define _POSIX_C_SOURCE 200809L
#include "presence.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 50

struct node {
  const char *name;
  presence_engine *engine;
  int socket; /* this node's end of the bus */
  volatile int running;
};

static void check(presence_status st, const char *what) {
  if (st != PRESENCE_STATUS_OK) {
    char msg[256];
    presence_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s: %s\n", what, presence_status_name(st), msg);
    exit(1);
  }
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* presence_message_cb: publish one message on the bus (one datagram each). */
static void publish(void *userdata, const uint8_t *data, size_t len) {
  struct node *n = (struct node *)userdata;
  if (send(n->socket, data, len, 0) < 0) perror("send");
}

static void *run(void *arg) {
  struct node *n = (struct node *)arg;
  uint8_t *buf = (uint8_t *)malloc(1 << 16); /* one per thread */
  long next_tick = now_ms();
  struct pollfd pfd;
  pfd.fd = n->socket;
  pfd.events = POLLIN;
  while (n->running) {
    long wait = next_tick - now_ms();
    if (wait <= 0) {
      check(presence_cluster_tick(n->engine, publish, n), "tick");
      next_tick += TICK_MS;
      continue;
    }
    if (poll(&pfd, 1, (int)wait) == 1) {
      ssize_t len = recv(n->socket, buf, 1 << 16, 0);
      /* A refused message (PRESENCE_STATUS_REJECTED) is counted by the engine; go on. */
      if (len > 0) presence_cluster_ingest(n->engine, buf, (size_t)len);
    }
  }
  free(buf);
  return NULL;
}

static presence_engine *make(const char *name) {
  char config[256];
  presence_engine *e = NULL;
  snprintf(config, sizeof config,
           "{\"cluster\":{\"node\":\"%s\",\"secret\":\"shared secret of the cluster\","
           "\"tick_ms\":%d,\"down_after_ms\":1000,\"max_message_bytes\":65536}}",
           name, TICK_MS);
  check(presence_engine_new(config, &e), "engine_new");
  return e;
}

static void show(struct node *n, const char *topic) {
  presence_counts c;
  check(presence_get_counts(n->engine, topic, &c), "counts");
  printf("node %s sees %s: %llu users · %llu viewers (%llu connections)\n", n->name, topic,
         (unsigned long long)c.users, (unsigned long long)c.viewers, (unsigned long long)c.connections);
}

static uint64_t connections(struct node *n, const char *topic) {
  presence_counts c;
  check(presence_get_counts(n->engine, topic, &c), "counts");
  return c.connections;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

int main(void) {
  int pair[2];
  struct node a = {"a", NULL, -1, 1}, b = {"b", NULL, -1, 1};
  pthread_t ta, tb;
  presence_cluster_stats s;
  int i;

  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) != 0) {
    perror("socketpair");
    return 1;
  }
  a.engine = make("a");
  b.engine = make("b");
  a.socket = pair[0];
  b.socket = pair[1];

  /* alice has a tab on each node; bob and an anonymous viewer are on b, another on a. */
  check(presence_track(a.engine, "video:42", 1, "alice", NULL), "track");
  check(presence_track(a.engine, "video:42", 2, NULL, NULL), "track");
  check(presence_track(b.engine, "video:42", 1, "alice", NULL), "track");
  check(presence_track(b.engine, "video:42", 2, "bob", NULL), "track");
  check(presence_track(b.engine, "video:42", 3, NULL, NULL), "track");

  pthread_create(&ta, NULL, run, &a);
  pthread_create(&tb, NULL, run, &b);
  for (i = 0; i < 100 && (connections(&a, "video:42") != 5 || connections(&b, "video:42") != 5); i++) sleep_ms(TICK_MS);
  show(&a, "video:42");
  show(&b, "video:42");

  /* b shuts down cleanly: its departure reaches a, which drops b's presences at once. */
  b.running = 0;
  pthread_join(tb, NULL);
  check(presence_cluster_leave(b.engine, publish, &b), "leave");
  for (i = 0; i < 100 && connections(&a, "video:42") != 2; i++) sleep_ms(TICK_MS / 5);
  show(&a, "video:42");

  a.running = 0;
  pthread_join(ta, NULL);
  check(presence_cluster_get_stats(a.engine, &s), "stats");
  printf("node a sent %llu messages (%llu bytes), received %llu, refused %llu (replayed %llu, malformed %llu)\n",
         (unsigned long long)s.messages_sent, (unsigned long long)s.bytes_sent,
         (unsigned long long)s.messages_received,
         (unsigned long long)(s.rejected_unauthenticated + s.rejected_malformed + s.rejected_oversized +
                              s.rejected_replayed),
         (unsigned long long)s.rejected_replayed, (unsigned long long)s.rejected_malformed);
  presence_engine_free(a.engine);
  presence_engine_free(b.engine);
  close(pair[0]);
  close(pair[1]);
  return 0;
}
