# Benchmarks (bench/). `make bench` builds the drivers and runs every suite of
# bench/run.py, which writes bench/BENCHMARKS.md and its PNG plots; `make bench-quick`
# passes BENCH_QUICK=1 for a fast look. `make test-bench` checks, on a small workload, that
# every tracker the benchmarks compare gives the same counts (it asserts no timing).
#
# Everything built or installed here goes under target/bench/: the Rust drivers
# (cargo/release/; test-bench's are dev builds in target/debug/), the C driver, and the
# Python venv (matplotlib, the frameworks of bench/python_integrations.py, the
# presence_engine package). The Node package is installed into bench/node_modules
# (ignored by git) so that bench/node_bench.mjs can import it.
# BENCH_ONLY=suite,... runs some suites only.

BENCH_SUITES += bench-run
TEST_SUITES += test-bench

BENCH_DIR := $(ROOT)/bench
BENCH_OUT := $(TARGET_DIR)/bench
BENCH_CARGO_DIR := $(BENCH_OUT)/cargo
BENCH_VENV := $(BENCH_OUT)/venv
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_C := $(BENCH_OUT)/presence_bench_c
BENCH_CARGO := CARGO_TARGET_DIR=$(BENCH_CARGO_DIR) $(CARGO)

.PHONY: deps-bench bench-drivers bench-venv bench-packages bench-run test-bench

## System packages: a C compiler (deps-c) and redis-server, which run.py starts itself on
## a free loopback port and stops at the end.
DEPS_BENCH := redis-server python3-venv
APT_PACKAGES += $(DEPS_BENCH)
deps-bench: deps-c $(APT_FIRST)
	$(call apt_install,$(DEPS_BENCH))

## The Rust drivers, the release library and the C driver linked against it. The figures
## always come from the drivers' release profile, in target/bench/cargo/. test-bench, which
## asserts no timing, builds them in the dev profile, in a target dir of its own: sharing
## the root's would let the root's build of the core (without the bench-internals feature)
## replace the library file the bench crate links against.
BENCH_BUILD := --release
BENCH_RUST_BIN := $(BENCH_CARGO_DIR)/release
test-bench: BENCH_CARGO := CARGO_TARGET_DIR=$(BENCH_OUT)/cargo-test $(CARGO)
test-bench: BENCH_BUILD :=
test-bench: BENCH_RUST_BIN := $(BENCH_OUT)/cargo-test/debug
bench-drivers: deps-bench lib
	cd $(BENCH_DIR) && $(BENCH_CARGO) build $(BENCH_BUILD) --bins
	@mkdir -p $(BENCH_OUT)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -I$(ROOT)/include $(BENCH_DIR)/c/presence_bench.c \
	  $(TARGET_DIR)/release/libpresence.a -lpthread -ldl -lm -o $(BENCH_C)

## The bench venv with matplotlib, python-socketio and starlette (bench/requirements.txt).
$(BENCH_PY): $(BENCH_DIR)/requirements.txt
	@mkdir -p $(BENCH_OUT)
	python3 -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) -m pip install -q -r $(BENCH_DIR)/requirements.txt
	@touch $(BENCH_PY)

bench-venv: deps-bench $(BENCH_PY)

## The Python and Node packages, for bench/python_bench.py and bench/node_bench.mjs: the
## wheel mk/python.mk builds, and bindings/node (its koffi from mk/node.mk's `npm ci`)
## linked into bench/node_modules. bench/node_integrations.mjs requires from bindings/node
## itself, where that `npm ci` also installs the dev dependencies it drives (socket.io,
## socket.io-client, ws).
bench-packages: bench-venv python-wheel node-packages
	$(BENCH_PY) -m pip install -q --force-reinstall --no-deps $(PY_WHEELS)/presence_engine-*.whl
	npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
	  --prefix $(BENCH_DIR) $(ROOT)/bindings/node

bench-run: bench-drivers bench-packages
	cd $(ROOT) && BENCH_TARGET=$(BENCH_OUT) BENCH_RUST_BIN=$(BENCH_RUST_BIN) \
	  $(BENCH_PY) $(BENCH_DIR)/run.py $(if $(BENCH_QUICK),--quick) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

## Lints and unit tests of the bench crate, then the cross-tracker count check (engine from
## Rust and through the C ABI, the HashMap floor, the Redis patterns, a three-process cluster
## over Redis in both formats; the Python and Node scripts' own --check, and the integration
## scripts': every socket of every path is handed every diff). Lints and unit tests share
## the drivers' target dir and dependencies.
test-bench: bench-drivers bench-packages
	cd $(BENCH_DIR) && $(CARGO) fmt --check
	cd $(BENCH_DIR) && $(BENCH_CARGO) clippy --all-targets -- -D warnings
	cd $(BENCH_DIR) && $(BENCH_CARGO) test --lib
	cd $(ROOT) && BENCH_TARGET=$(BENCH_OUT) BENCH_RUST_BIN=$(BENCH_RUST_BIN) \
	  $(BENCH_PY) $(BENCH_DIR)/run.py --check
