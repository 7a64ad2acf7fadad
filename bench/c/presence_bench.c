/*
 * C driver of `make bench`: the engine through its C ABI (include/presence.h, linked
 * statically with target/release/libpresence.a), on the standard workload shared by
 * every driver: N connections over T topics, connection i is user i/2 (key "u{i/2}")
 * in topic "t{(i/2) % T}". Strings are built before any clock starts.
 *
 *   presence_bench_c track_untrack --n N --topics T --runs R
 *   presence_bench_c hot --n N --calls C --runs R
 *   presence_bench_c check --n N --topics T --anonymous-every K
 *
 * Output: one JSON object per line, as the Rust drivers print (see bench/src/out.rs).
 */
#define _POSIX_C_SOURCE 200809L
#include "presence.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, presence_status st) {
    char msg[512];
    presence_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s: %s\n", what, presence_status_name((uint32_t)st), msg);
    exit(1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t opt(int argc, char **argv, const char *name, size_t dflt) {
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0) {
            char *end = NULL;
            unsigned long long v = strtoull(argv[i + 1], &end, 10);
            if (end == argv[i + 1] || *end != '\0') {
                fprintf(stderr, "--%s must be an integer\n", name);
                exit(2);
            }
            return (size_t)v;
        }
    }
    return dflt;
}

/* The workload's strings: one per topic, one per user, plus which connections are anonymous. */
typedef struct {
    size_t n, topics, anonymous_every, used_topics, users;
    char **topic_names;
    char **keys;
} workload;

static char *fmt_name(char prefix, size_t v) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c%zu", prefix, v);
    char *s = malloc((size_t)len + 1);
    if (!s) {
        perror("malloc");
        exit(1);
    }
    memcpy(s, buf, (size_t)len + 1);
    return s;
}

static workload workload_new(size_t n, size_t topics, size_t anonymous_every) {
    workload w = {n, topics, anonymous_every, 0, 0, NULL, NULL};
    w.users = (n + 1) / 2;
    w.used_topics = topics < w.users ? topics : (w.users ? w.users : 1);
    w.topic_names = malloc(w.used_topics * sizeof *w.topic_names);
    w.keys = malloc((w.users ? w.users : 1) * sizeof *w.keys);
    if (!w.topic_names || !w.keys) {
        perror("malloc");
        exit(1);
    }
    for (size_t t = 0; t < w.used_topics; t++) w.topic_names[t] = fmt_name('t', t);
    for (size_t u = 0; u < w.users; u++) w.keys[u] = fmt_name('u', u);
    return w;
}

static void workload_free(workload *w) {
    for (size_t t = 0; t < w->used_topics; t++) free(w->topic_names[t]);
    for (size_t u = 0; u < w->users; u++) free(w->keys[u]);
    free(w->topic_names);
    free(w->keys);
}

static const char *topic_of(const workload *w, size_t i) { return w->topic_names[(i / 2) % w->topics]; }

static const char *key_of(const workload *w, size_t i) {
    size_t k = w->anonymous_every;
    if (k != 0 && i % k == k - 1) return NULL;
    return w->keys[i / 2];
}

static presence_engine *engine_new(void) {
    presence_engine *e = NULL;
    presence_status st =
        presence_engine_new("{\"max_topics\":4000000,\"max_presences\":40000000}", &e);
    if (st != PRESENCE_STATUS_OK) die("presence_engine_new", st);
    return e;
}

static void drain(presence_engine *e) {
    presence_buf buf = {NULL, 0};
    presence_status st = presence_poll_diff(e, &buf);
    if (st != PRESENCE_STATUS_OK) die("presence_poll_diff", st);
    presence_buf_free(&buf);
}

static void print_runs(const double *runs, size_t n) {
    printf("[");
    for (size_t r = 0; r < n; r++) printf(r ? ",%.6f" : "%.6f", runs[r]);
    printf("]");
}

/* Track all N, then untrack all N: (2N calls) / time. */
static void track_untrack(int argc, char **argv) {
    size_t n = opt(argc, argv, "n", 1000000), topics = opt(argc, argv, "topics", 1000);
    size_t runs = opt(argc, argv, "runs", 5);
    workload w = workload_new(n, topics, 0);
    size_t cap = runs ? runs : 1;
    double *out = calloc(cap, sizeof *out), *track_ns = calloc(cap, sizeof *out),
           *untrack_ns = calloc(cap, sizeof *out);
    if (!out || !track_ns || !untrack_ns) {
        perror("calloc");
        exit(1);
    }
    for (size_t r = 0; r < runs; r++) {
        presence_engine *e = engine_new();
        double t0 = now_s();
        for (size_t i = 0; i < n; i++) {
            presence_status st = presence_track(e, topic_of(&w, i), (uint64_t)i, key_of(&w, i), NULL);
            if (st != PRESENCE_STATUS_OK) die("presence_track", st);
        }
        double t1 = now_s();
        for (size_t i = 0; i < n; i++) {
            presence_status st = presence_untrack(e, topic_of(&w, i), (uint64_t)i);
            if (st != PRESENCE_STATUS_OK) die("presence_untrack", st);
        }
        double t2 = now_s();
        drain(e);
        presence_engine_free(e);
        out[r] = 2.0 * (double)n / (t2 - t0);
        track_ns[r] = (t1 - t0) * 1e9 / (double)n;
        untrack_ns[r] = (t2 - t1) * 1e9 / (double)n;
    }
    printf("{\"bench\":\"track_untrack\",\"impl\":\"c-abi\",\"baseline\":\"rust-floor\","
           "\"unit\":\"ops/s\",\"params\":{\"n\":%zu,\"topics\":%zu},\"track_ns_per_op\":",
           n, topics);
    print_runs(track_ns, runs);
    printf(",\"untrack_ns_per_op\":");
    print_runs(untrack_ns, runs);
    printf(",\"runs\":");
    print_runs(out, runs);
    printf("}\n");
    free(out);
    free(track_ns);
    free(untrack_ns);
    workload_free(&w);
}

/* presence_get_counts on one topic of N presences: ns per call. */
static void hot(int argc, char **argv) {
    size_t n = opt(argc, argv, "n", 100000), calls = opt(argc, argv, "calls", 1000000);
    size_t runs = opt(argc, argv, "runs", 5);
    workload w = workload_new(n, 1, 0);
    presence_engine *e = engine_new();
    for (size_t i = 0; i < n; i++) {
        presence_status st = presence_track(e, topic_of(&w, i), (uint64_t)i, key_of(&w, i), NULL);
        if (st != PRESENCE_STATUS_OK) die("presence_track", st);
    }
    drain(e);
    double *out = calloc(runs ? runs : 1, sizeof *out);
    volatile uint64_t sink = 0;
    for (size_t r = 0; r < runs; r++) {
        presence_counts c;
        double t0 = now_s();
        for (size_t k = 0; k < calls; k++) {
            presence_status st = presence_get_counts(e, w.topic_names[0], &c);
            if (st != PRESENCE_STATUS_OK) die("presence_get_counts", st);
            sink += c.connections;
        }
        out[r] = (now_s() - t0) * 1e9 / (double)calls;
    }
    if (sink != (uint64_t)n * calls * runs) {
        fprintf(stderr, "counts disagree with the workload\n");
        exit(1);
    }
    printf("{\"bench\":\"counts_hot\",\"impl\":\"c-abi\",\"baseline\":\"rust-floor\","
           "\"unit\":\"ns\",\"params\":{\"presences\":%zu},\"runs\":",
           n);
    print_runs(out, runs);
    printf("}\n");
    free(out);
    presence_engine_free(e);
    workload_free(&w);
}

static void print_check(presence_engine *e, const workload *w, const char *phase) {
    printf("{\"check\":\"counts\",\"impl\":\"c-abi\",\"phase\":\"%s\",\"topics\":{", phase);
    for (size_t t = 0; t < w->used_topics; t++) {
        presence_counts c;
        presence_status st = presence_get_counts(e, w->topic_names[t], &c);
        if (st != PRESENCE_STATUS_OK) die("presence_get_counts", st);
        printf("%s\"%s\":[%llu,%llu,%llu]", t ? "," : "", w->topic_names[t],
               (unsigned long long)c.viewers, (unsigned long long)c.users,
               (unsigned long long)c.connections);
    }
    printf("}}\n");
}

/* The correctness check of `make test`: the same three phases as the Rust check. */
static void check(int argc, char **argv) {
    size_t n = opt(argc, argv, "n", 2001), topics = opt(argc, argv, "topics", 7);
    workload w = workload_new(n, topics, opt(argc, argv, "anonymous-every", 5));
    presence_engine *e = engine_new();
    for (size_t i = 0; i < n; i++) {
        presence_status st = presence_track(e, topic_of(&w, i), (uint64_t)i, key_of(&w, i), NULL);
        if (st != PRESENCE_STATUS_OK) die("presence_track", st);
    }
    print_check(e, &w, "tracked");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if ((i % 3 == 0) != (pass == 0)) continue;
            presence_status st = presence_untrack(e, topic_of(&w, i), (uint64_t)i);
            if (st != PRESENCE_STATUS_OK) die("presence_untrack", st);
        }
        print_check(e, &w, pass == 0 ? "partial" : "empty");
    }
    drain(e);
    presence_engine_free(e);
    workload_free(&w);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s track_untrack|hot|check [--option value ...]\n", argv[0]);
        return 2;
    }
    if (strcmp(PRESENCE_VERSION, presence_version()) != 0) {
        fprintf(stderr, "header %s does not match library %s\n", PRESENCE_VERSION, presence_version());
        return 1;
    }
    if (strcmp(argv[1], "track_untrack") == 0) track_untrack(argc, argv);
    else if (strcmp(argv[1], "hot") == 0) hot(argc, argv);
    else if (strcmp(argv[1], "check") == 0) check(argc, argv);
    else {
        fprintf(stderr, "unknown command %s\n", argv[1]);
        return 2;
    }
    return 0;
}
