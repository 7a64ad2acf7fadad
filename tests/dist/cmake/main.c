/* Links presence::presence from the SDK and checks that the header and the library agree. */
#include "presence.h"
#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(presence_version(), PRESENCE_VERSION) != 0) {
    fprintf(stderr, "header %s, library %s\n", PRESENCE_VERSION, presence_version());
    return 1;
  }
  presence_engine *engine = NULL;
  if (presence_engine_new(NULL, &engine) != PRESENCE_STATUS_OK) return 1;
  if (presence_track(engine, "room", 1, "alice", NULL) != PRESENCE_STATUS_OK) return 1;
  if (presence_track(engine, "room", 2, NULL, NULL) != PRESENCE_STATUS_OK) return 1;
  presence_counts c;
  if (presence_get_counts(engine, "room", &c) != PRESENCE_STATUS_OK) return 1;
  printf("users=%llu viewers=%llu\n", (unsigned long long)c.users, (unsigned long long)c.viewers);
  presence_engine_free(engine);
  return 0;
}
