# The C example: a simulated server that pushes coalesced diffs, driven by the wake-up fd.

EXAMPLES_BIN := $(TARGET_DIR)/examples

.PHONY: demo-c
demo-c: deps-c lib
	@mkdir -p $(EXAMPLES_BIN)
	cc -std=c99 -Wall -Wextra -Werror -O2 -Iinclude examples/c/rooms.c \
	  $(TARGET_DIR)/release/libpresence.a -lpthread -ldl -lm -o $(EXAMPLES_BIN)/rooms
	$(EXAMPLES_BIN)/rooms $(or $(SECONDS),5) $(or $(WINDOW_MS),100)
