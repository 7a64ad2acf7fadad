# System packages the suites need, installed on first use. CI and fresh machines run as
# root with Debian's apt; a machine that has the tools already skips this.

APT_GET := $(if $(shell command -v sudo 2>/dev/null),sudo ,)apt-get

# apt-get install only what is missing; `apt-get update` runs once, when needed.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing >/dev/null; \
	fi
endef

.PHONY: deps-c
deps-c:
	$(call apt_install,gcc g++ make valgrind)

.PHONY: deps-redis
deps-redis:
	$(call apt_install,redis-server)
