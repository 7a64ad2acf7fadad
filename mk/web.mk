# The web demo (examples/web/) and the wire-compatibility tests (tests/compat/).
#
# `make demo-python` (the default `make demo`) and `make demo-node` build the page and
# start the demo server in the foreground on DEMO_HOST:DEMO_PORT (127.0.0.1:8000); it
# prints the URL to open. With NODES=3 (any NODES > 1) they start a redis-server of their
# own (deps-redis) and that many servers in cluster mode on consecutive ports, through
# examples/web/server/cluster.mjs, which stops them all on Ctrl-C. `make test-compat` replays random sequences through the official
# phoenix client and the seed article's Redux reducer; `make test-browser` drives Debian's
# Chromium (playwright-core, no browser download) against both servers and writes
# screenshots to target/browser-results/.
#
# Installed here: Debian's chromium (apt); the npm packages of examples/web and
# tests/compat (`npm ci`, again only when a manifest or lockfile changes); the Python venv
# target/web/venv with uvicorn, websockets and the presence_engine wheel that mk/python.mk builds.
# Both npm projects link bindings/node, whose own dependencies (koffi) come from
# mk/node.mk's `npm ci` there ($(NODE_STAMP)); the Node package loads
# target/release/libpresence.so, built by `lib`.

TEST_SUITES += test-compat test-browser

WEB_DIR := $(ROOT)/examples/web
COMPAT_DIR := $(ROOT)/tests/compat
WEB_OUT := $(TARGET_DIR)/web
WEB_VENV := $(WEB_OUT)/venv
WEB_PY := $(WEB_VENV)/bin/python
WEB_RESULTS := $(TARGET_DIR)/browser-results
WEB_STAMP := $(WEB_DIR)/node_modules/.presence-ci-stamp
COMPAT_STAMP := $(COMPAT_DIR)/node_modules/.presence-ci-stamp
WEB_DIST := $(WEB_DIR)/dist/index.html
WEB_SOURCES := $(WEB_DIR)/index.html $(WEB_DIR)/vite.config.js $(shell find $(WEB_DIR)/src -type f 2>/dev/null)
CHROMIUM ?= /usr/bin/chromium
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
# NODES > 1: `make demo` runs that many servers as one cluster over a local redis-server.
NODES ?= 1
DEMO_CLUSTER := $(filter-out 0 1,$(NODES))
WEB_NPM_CI := $(NPM) ci --no-audit --no-fund --loglevel=error

.PHONY: deps-chromium web-deps web-build web-venv test-compat test-browser demo-python demo-node

APT_PACKAGES += chromium
deps-chromium: $(APT_FIRST)
	$(call apt_install,chromium)

$(WEB_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json | deps-node
	cd $(WEB_DIR) && $(WEB_NPM_CI)
	touch $@

$(COMPAT_STAMP): $(COMPAT_DIR)/package.json $(COMPAT_DIR)/package-lock.json | deps-node
	cd $(COMPAT_DIR) && $(WEB_NPM_CI)
	touch $@

## The Node side of the demo: the page's packages, the Node package's, the library.
web-deps: $(WEB_STAMP) $(NODE_STAMP) lib

## The page (React + Redux, built by Vite into examples/web/dist/, which git ignores).
$(WEB_DIST): $(WEB_SOURCES) $(WEB_STAMP)
	cd $(WEB_DIR) && $(NPM) run --silent build -- --logLevel warn

web-build: $(WEB_DIST)

## The Python side: a venv with uvicorn, websockets and the presence_engine wheel of mk/python.mk,
## reinstalled each time (the wheel build is incremental; the install is a local file).
$(WEB_PY): | deps-python
	@mkdir -p $(WEB_OUT)
	$(PYTHON3) -m venv $(WEB_VENV)

web-venv: python-wheel $(WEB_PY)
	$(WEB_PY) -m pip install $(PY_PIP) -r $(WEB_DIR)/server/python/requirements.txt
	$(WEB_PY) -m pip install $(PY_PIP) --force-reinstall --no-deps $(PY_WHEELS)/presence_engine-*.whl

## The Python Phoenix endpoint's test (bindings/python/tests) drives it with the official
## phoenix client of tests/compat and feeds the seed's reducer of examples/web.
test-python: $(COMPAT_STAMP) $(WEB_STAMP)

## The official phoenix client and the seed's reducer (the page's module, with the page's
## redux-actions and immutable) against the engine, through the Node package.
test-compat: $(COMPAT_STAMP) web-deps
	cd $(COMPAT_DIR) && $(NODE) --test *.test.js

## Chromium against the Python and the Node server, each on a free loopback port, then
## two of each in cluster mode over a redis-server of the test's own (test/cluster.test.js).
test-browser: deps-chromium deps-redis web-deps web-venv $(WEB_DIST)
	@mkdir -p $(WEB_RESULTS)
	cd $(WEB_DIR) && CHROMIUM=$(CHROMIUM) PRESENCE_DEMO_PYTHON=$(WEB_PY) BROWSER_RESULTS=$(WEB_RESULTS) \
	  $(NODE) --test --test-concurrency=1 test/*.test.js
	@echo "screenshots: $(WEB_RESULTS)/"

## What a demo needs, prepared side by side: the native build (CPU: the wheel for the
## Python server, the library for the Node one) and the page (mostly network: npm ci, then
## Vite), so that a fresh clone waits for the longer of the two, not for their sum. The
## system packages come first, alone: two apt-get runs at once would fight over apt's lock.
## The demo's wheel is built with the quicker `demo` profile (bindings/python/Cargo.toml);
## DEMO_PY_PROFILE=release for the optimized one.
DEMO_PY_PROFILE ?= demo
.PHONY: demo-prep-python demo-prep-node
demo-prep-python: deps-python deps-node
	@echo "demo: building the Python package (cargo, the first time a few minutes on 2 cores) and the page (npm ci, Vite), side by side"
	$(MAKE) --no-print-directory -j2 web-venv $(WEB_DIST) PY_PROFILE=$(DEMO_PY_PROFILE)

demo-prep-node: deps-node
	@echo "demo: building the library (cargo, the first time a few minutes on 2 cores) and the page (npm ci, Vite), side by side"
	$(MAKE) --no-print-directory -j2 web-deps $(WEB_DIST)

## `make demo` is one node, no external service. NODES=3 (any NODES > 1): a redis-server of
## its own and NODES servers in cluster mode on DEMO_PORT, DEMO_PORT+1, ... (server/cluster.mjs).
ifeq ($(DEMO_CLUSTER),)
demo-python: demo-prep-python
	@echo "starting the Python demo server (Ctrl-C stops it; DEMO_PORT=... picks another port)"
	$(WEB_PY) $(WEB_DIR)/server/python/server.py --host $(DEMO_HOST) --port $(DEMO_PORT)

demo-node: demo-prep-node
	@echo "starting the Node demo server (Ctrl-C stops it; DEMO_PORT=... picks another port)"
	cd $(WEB_DIR) && $(NODE) server/node/server.js --host $(DEMO_HOST) --port $(DEMO_PORT)
else
demo-python: demo-prep-python deps-redis
	@echo "starting redis-server and $(NODES) Python demo servers in cluster mode (Ctrl-C stops them all)"
	cd $(WEB_DIR) && $(NODE) server/cluster.mjs --server python --python $(WEB_PY) \
	  --nodes $(NODES) --host $(DEMO_HOST) --port $(DEMO_PORT)

demo-node: demo-prep-node deps-redis
	@echo "starting redis-server and $(NODES) Node demo servers in cluster mode (Ctrl-C stops them all)"
	cd $(WEB_DIR) && $(NODE) server/cluster.mjs --server node --nodes $(NODES) --host $(DEMO_HOST) --port $(DEMO_PORT)
endif
