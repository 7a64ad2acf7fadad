# The commands the README shows. `make demo` runs the live demo, `make test` every test,
# `make bench` the benchmarks. Each installs what it needs (see mk/deps.mk).
#
# Components add themselves through mk/*.mk: each fragment appends its test target to
# TEST_SUITES (and its bench target to BENCH_SUITES), so no shared list needs editing.

ROOT := $(abspath .)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# With RECIPE_TIMEOUT (seconds), each recipe line runs under mk/timed-shell, which stops it
# after that long: `make test` sets it, so that a hung test fails its suite and shows.
ifneq ($(RECIPE_TIMEOUT),)
SHELL := $(ROOT)/mk/timed-shell
.SHELLFLAGS := $(RECIPE_TIMEOUT) -eu -o pipefail -c
endif
.DEFAULT_GOAL := help

CARGO ?= cargo
TARGET_DIR := $(ROOT)/target
# Tests and lints build in the dev profile with line tables only instead of full debug
# info: backtraces and sanitizer reports keep their files and lines, and there is much
# less to compile and link.
export CARGO_PROFILE_DEV_DEBUG ?= line-tables-only

TEST_SUITES :=
TEST_DEPS :=
APT_PACKAGES :=
BENCH_SUITES :=
# Which demo `make demo` runs; components register theirs as demo-<name>.
DEMO ?= python
include $(sort $(wildcard mk/*.mk))

.PHONY: help demo test test-deps test-suites bench bench-quick lib header
help:
	@echo "make demo   - run the live demo (single node, no external service; DEMO=node, NODES=3 for a cluster)"
	@echo "make test   - run every test suite, TEST_JOBS ($(TEST_JOBS)) at a time: $(TEST_SUITES)"
	@echo "make bench  - run the benchmarks and write bench/BENCHMARKS.md"
	@echo "make dist   - the wheel, the sdist, the npm tarball and the C SDK, into dist/"
	@echo "make install PREFIX=... - the C SDK (header, libraries, pkg-config, CMake config)"

## The release library (static and shared) and the header.
lib:
	$(CARGO) build --release --lib

## Regenerate include/presence.h after changing the C layer (src/), then what is generated from it
## and from the core's tables (status and config tables, stubs; tests/generated.rs).
header:
	UPDATE_HEADER=1 $(CARGO) test --test header
	UPDATE_GENERATED=1 $(CARGO) test --test generated

demo: demo-$(DEMO)

## Every suite, TEST_JOBS at a time: on two cores one suite's builds fill the time another
## spends in single-threaded links, tests and downloads. The release library and the wheel,
## which most suites wait for, and test-rust, the longest, are started first; the system
## packages of all suites are installed in one apt-get run beside them (mk/deps.mk). Each
## target's output is printed whole when it finishes; a failing suite fails the run once
## the suites already started have finished. No line may run longer than TEST_LINE_TIMEOUT
## seconds: far above any line of a passing run, far below CI's limit.
TEST_JOBS ?= 3
TEST_LINE_TIMEOUT ?= 1200
test:
	$(MAKE) --no-print-directory -j1 test-deps RECIPE_TIMEOUT=$(TEST_LINE_TIMEOUT)
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-suites APT_FIRST=deps-apt \
	  RECIPE_TIMEOUT=$(TEST_LINE_TIMEOUT)

test-deps: $(TEST_DEPS)

test-suites: lib python-wheel test-rust $(TEST_SUITES)
	@echo "all test suites passed: $(TEST_SUITES)"

bench: $(BENCH_SUITES)

bench-quick:
	$(MAKE) bench BENCH_QUICK=1
