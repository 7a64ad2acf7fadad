# System packages the suites need, installed on first use. CI and fresh machines run as
# root with Debian's apt; a machine that has the tools already skips this.
#
# Each fragment adds the Debian packages of its deps-* targets to APT_PACKAGES. `make test`
# installs all the missing ones in one apt-get run (deps-apt; two apt-get runs at once would
# fight over apt's lock), beside the first builds, which need none of them: it sets
# APT_FIRST=deps-apt, and every deps-* target that calls apt waits for that run. A suite
# made on its own installs only its own packages. TEST_DEPS are the targets that may
# install a tool by other means (python3, node): `make test` runs them before the suites.

# DEBIAN_FRONTEND through env, after sudo (which would reset it): no package may stop the
# run to ask a question.
APT_GET := $(if $(shell command -v sudo 2>/dev/null),sudo ,)env DEBIAN_FRONTEND=noninteractive apt-get

# apt-get install only what is missing; `apt-get update` runs once, when needed.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq $$missing </dev/null >/dev/null; \
	fi
endef

DEPS_C := gcc g++ make valgrind
APT_PACKAGES += $(DEPS_C) redis-server
APT_FIRST ?=

.PHONY: deps-apt deps-c deps-redis
deps-apt:
	$(call apt_install,$(sort $(APT_PACKAGES)))

deps-c: $(APT_FIRST)
	$(call apt_install,$(DEPS_C))

deps-redis: $(APT_FIRST)
	$(call apt_install,redis-server)
