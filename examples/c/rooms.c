/*
 * rooms: a simulated socket server in C. A "network" thread makes viewers and users join
 * and leave a few video rooms at a high rate; the main thread waits on the engine's
 * wake-up descriptor, lets changes gather for one window, then pushes one coalesced
 * presence_diff per changed room, exactly as a real server would.
 *
 *   rooms [seconds] [window_ms]      (defaults: 3 s, 100 ms)
 */
#define _POSIX_C_SOURCE 200809L
#include "presence.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROOMS 3
#define CONNS 600

static presence_engine *engine;
static volatile int running = 1;
static unsigned long events;
static unsigned long per_event_messages; /* what one broadcast per join/leave would cost */
static unsigned long states_sent;

static void die(presence_status st, const char *what) {
  char msg[256];
  presence_last_error_message(msg, sizeof msg);
  fprintf(stderr, "%s: %s: %s\n", what, presence_status_name(st), msg);
  exit(1);
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* Where each simulated connection is: -1 when disconnected. */
static int room_of[CONNS];

static void room_name(int room, char *out, size_t cap) { snprintf(out, cap, "video:%d", room + 1); }

/* A client joins: the server sends it the room's state, then tracks it. */
static void client_joins(unsigned conn, int room, unsigned *seed) {
  char topic[32], key[32];
  presence_buf state = {NULL, 0};
  uint64_t seq = 0;
  presence_status st;
  room_name(room, topic, sizeof topic);
  if ((st = presence_list(engine, topic, &state, &seq)) != PRESENCE_STATUS_OK) die(st, "list");
  if (states_sent++ < 3) printf("  -> conn %u joins %s, gets presence_state (seq %llu): %s\n", conn, topic,
                                (unsigned long long)seq, (const char *)state.data);
  presence_buf_free(&state);
  /* One in three clients is logged in; users have two tabs (conn/2). */
  snprintf(key, sizeof key, "user%u", conn / 2);
  st = presence_track(engine, topic, conn, (rand_r(seed) % 3 == 0) ? key : NULL, NULL);
  if (st != PRESENCE_STATUS_OK) die(st, "track");
  room_of[conn] = room;
}

static void *network(void *arg) {
  unsigned seed = 42;
  (void)arg;
  while (running) {
    unsigned conn = (unsigned)rand_r(&seed) % CONNS;
    int room = room_of[conn];
    char topic[32];
    presence_counts c;
    if (room < 0) {
      room = (int)(rand_r(&seed) % ROOMS);
      client_joins(conn, room, &seed);
    } else {
      presence_status st = presence_untrack_conn(engine, conn, NULL); /* the socket closed */
      if (st != PRESENCE_STATUS_OK) die(st, "untrack_conn");
      room_of[conn] = -1;
    }
    events++;
    room_name(room, topic, sizeof topic);
    if (presence_get_counts(engine, topic, &c) == PRESENCE_STATUS_OK) per_event_messages += c.connections;
    sleep_ms(1); /* roughly a thousand joins and leaves per second */
  }
  return NULL;
}

static unsigned long pushes, messages;

static void push(void *userdata, const presence_topic_diff *d) {
  (void)userdata;
  pushes++;
  messages += d->counts.connections; /* one message to each socket of the room */
  printf("  push %.*s seq %llu to %llu sockets: %.*s\n", (int)d->topic.len, d->topic.data,
         (unsigned long long)d->seq, (unsigned long long)d->counts.connections, (int)d->payload.len,
         d->payload.data);
}

int main(int argc, char **argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 3;
  int window_ms = argc > 2 ? atoi(argv[2]) : 100;
  presence_status st;
  pthread_t thread;
  struct pollfd pfd;
  struct timespec start, now;
  int i;

  for (i = 0; i < CONNS; i++) room_of[i] = -1;
  if ((st = presence_engine_new(NULL, &engine)) != PRESENCE_STATUS_OK) die(st, "engine_new");
  printf("presence-engine %s: %d rooms, %d simulated connections, %d s, %d ms poll window\n",
         presence_version(), ROOMS, CONNS, seconds, window_ms);
  pthread_create(&thread, NULL, network, NULL);

  pfd.fd = presence_wakeup_fd(engine);
  pfd.events = POLLIN;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= seconds) break;
    /* Sleep until something changed: no busy loop, no blind timer. */
    if (poll(&pfd, 1, 1000) <= 0) continue;
    sleep_ms(window_ms); /* let changes gather: one diff per room per window */
    printf("poll at %.1f s:\n", (double)(now.tv_sec - start.tv_sec) + (double)now.tv_nsec / 1e9 -
                                    (double)start.tv_nsec / 1e9);
    if ((st = presence_poll_diff_each(engine, push, NULL)) != PRESENCE_STATUS_OK) die(st, "poll");
  }
  running = 0;
  pthread_join(thread, NULL);

  for (i = 0; i < ROOMS; i++) {
    char topic[32];
    presence_counts c;
    room_name(i, topic, sizeof topic);
    if ((st = presence_get_counts(engine, topic, &c)) != PRESENCE_STATUS_OK) die(st, "counts");
    printf("%s: %llu users, %llu viewers (%llu connections)\n", topic, (unsigned long long)c.users,
           (unsigned long long)c.viewers, (unsigned long long)c.connections);
  }
  printf("%lu joins and leaves became %lu coalesced diffs, %lu socket messages; one broadcast per "
         "event would have sent %lu socket messages (%.0fx more)\n",
         events, pushes, messages, per_event_messages,
         messages ? (double)per_event_messages / (double)messages : 0.0);
  presence_engine_free(engine);
  return 0;
}
