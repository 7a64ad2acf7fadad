# The Python package (bindings/python). `make test-python`: format and lint its
# crate, build the abi3 wheel with maturin, install it with pytest, hypothesis and mypy
# into a FRESH virtualenv, and from a directory outside the source tree run the pytest
# suite, mypy's stubtest (the stubs match the module) and bench/python_bench.py --check.
# The cluster tests start a redis-server of their own on a loopback port (deps-redis,
# mk/deps.mk, installs it; without it they fail, they do not skip).
#
# Everything built or installed goes under target/python/: the crate's cargo target dir
# (cargo/), the build venv with maturin for PY_PROFILE wheels other than release
# (build-venv/, kept between runs), the wheel (wheels/) and the test venv (test-venv/,
# made anew by every run). The crate's lints use the root's target dir (PY_LINT).

TEST_SUITES += test-python

PY_DIR := $(ROOT)/bindings/python
PY_OUT := $(TARGET_DIR)/python
PY_BUILD_VENV := $(PY_OUT)/build-venv
PY_TEST_VENV := $(PY_OUT)/test-venv
PY_WHEELS := $(PY_OUT)/wheels
PYTHON3 ?= python3
# Lints run in the root's target dir, not in the wheel's (cargo/): there the dependencies
# are checked once for the core's clippy, the bench crate's and this one. In the wheel's
# target dir, whose build links with zig, a clippy run made the next wheel build compile
# every crate again. pyo3 asks PYO3_PYTHON (>= 3.10) for its build configuration; the abi3
# crate needs no particular one.
PY_LINT := cd $(PY_DIR) && CARGO_TARGET_DIR=$(TARGET_DIR) PYO3_PYTHON=$(PYTHON3) $(CARGO)
PY_PIP := --quiet --disable-pip-version-check
PY_TEST_DEPS := "pytest>=8" "hypothesis>=6.100" "mypy>=1.18"
# The reference parser of the Prometheus text format, which reads metrics() back.
PY_TEST_DEPS += "prometheus_client==0.26.0"
# What the integration tests run the integrations in and with: servers (uvicorn,
# python-socketio with redis-py for its AsyncRedisManager, FastAPI/Starlette) and clients
# (python-socketio's over aiohttp, websockets).
PY_TEST_DEPS += "python-socketio>=5.12" "aiohttp>=3.9" "redis>=5" "uvicorn>=0.35" "websockets>=13" "fastapi>=0.110"

.PHONY: deps-python python-lint python-wheel test-python
TEST_DEPS += deps-python

## python3 with venv and pip; Debian splits them out of the interpreter's package.
deps-python:
	@$(PYTHON3) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3-venv python3-pip"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq python3 python3-venv python3-pip </dev/null >/dev/null; }

## The build venv: maturin from PyPI (a binary wheel, no Rust build of its own).
$(PY_BUILD_VENV)/.ready:
	@mkdir -p $(PY_OUT)
	rm -rf $(PY_BUILD_VENV)
	$(PYTHON3) -m venv $(PY_BUILD_VENV)
	$(PY_BUILD_VENV)/bin/pip install $(PY_PIP) "maturin>=1.9.4,<2"
	@touch $@

## rustfmt and clippy over the binding crate.
python-lint: deps-python
	$(PY_LINT) fmt --check
	$(PY_LINT) clippy --all-targets -- -D warnings

## The abi3 wheel (one file, for every CPython >= 3.10), into target/python/wheels/.
## A release build is the manylinux wheel that ships (mk/dist.mk's dist-wheel): the tests,
## the benchmarks and dist share that one build, so what is tested is what users install.
## PY_PROFILE=demo (what `make demo` uses) builds a faster, less optimized wheel for this
## machine only, without zig.
PY_PROFILE ?= release
ifeq ($(PY_PROFILE),release)
python-wheel: dist-wheel
	rm -rf $(PY_WHEELS) && mkdir -p $(PY_WHEELS)
	cp $(WHEEL_GLOB) $(PY_WHEELS)/
else
python-wheel: deps-python $(PY_BUILD_VENV)/.ready
	rm -rf $(PY_WHEELS)
	cd $(PY_DIR) && CARGO_TARGET_DIR=$(PY_OUT)/cargo $(PY_BUILD_VENV)/bin/maturin build --profile $(PY_PROFILE) \
	  --interpreter $(PY_BUILD_VENV)/bin/python --out $(PY_WHEELS)
endif

test-python: deps-redis python-lint python-wheel
	rm -rf $(PY_TEST_VENV)
	$(PYTHON3) -m venv $(PY_TEST_VENV)
	$(PY_TEST_VENV)/bin/pip install $(PY_PIP) $(PY_WHEELS)/presence_engine-*.whl $(PY_TEST_DEPS)
	run=$$(mktemp -d) && trap 'rm -rf "$$run"' EXIT && cd "$$run" && \
	  export PRESENCE_ENGINE_WHEEL=$$(ls $(PY_WHEELS)/presence_engine-*.whl) PYTHONDONTWRITEBYTECODE=1 && \
	  $(PY_TEST_VENV)/bin/python -m pytest -p no:cacheprovider -q -rs $(PY_DIR)/tests && \
	  $(PY_TEST_VENV)/bin/python -m mypy.stubtest presence_engine && \
	  $(PY_TEST_VENV)/bin/python $(ROOT)/bench/python_bench.py --check
