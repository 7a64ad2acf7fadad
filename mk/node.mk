# The Node package (bindings/node): koffi over the C ABI of the release library. Needs
# Node >= 20 with npm (the machine's; Debian's nodejs is the fallback); `npm ci` installs
# the locked dependencies from the npm registry. The cluster tests start their own
# redis-server on a loopback port (deps-redis, mk/deps.mk, installs it).

TEST_SUITES += test-node

NODE ?= node
NPM ?= npm
NODE_PKG := bindings/node
NODE_STAMP := $(NODE_PKG)/node_modules/.presence-ci-stamp

.PHONY: test-node deps-node node-packages
TEST_DEPS += deps-node

deps-node:
	@if ! command -v $(NODE) >/dev/null 2>&1 || ! command -v $(NPM) >/dev/null 2>&1; then \
	  echo "installing: nodejs npm"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq nodejs npm </dev/null >/dev/null; \
	fi
	@$(NODE) -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("test-node needs Node >= 20, found " + process.version); process.exit(1) }'

# npm ci again only when the manifest or the lockfile changed.
$(NODE_STAMP): $(NODE_PKG)/package.json $(NODE_PKG)/package-lock.json | deps-node
	cd $(NODE_PKG) && $(NPM) ci --no-audit --no-fund
	touch $@

## The package's locked dependencies (koffi), for fragments included before this one.
node-packages: $(NODE_STAMP)

# dist-npm (mk/dist.mk) and test/pack.test.js both pack bindings/node, which puts the
# library into its prebuilds/ and takes it away again: one at a time when `make test` runs
# the suites side by side.
NODE_PACK_LOCK = flock $(TARGET_DIR)/.node-pack.lock

test-node: deps-node deps-redis $(NODE_STAMP) lib
	cd $(NODE_PKG) && $(NODE_PACK_LOCK) $(NODE) --test test/*.test.js
	$(NODE) bench/node_bench.mjs --check
