# Distribution: what users install without a Rust toolchain, and the C SDK layout.
#
# `make dist` writes into dist/:
#   presence_engine-<v>-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#                               the Python wheel, linked by zig against glibc 2.17 so that it
#                               installs on any x86_64 glibc Linux; checked by auditwheel
#   presence_engine-<v>.tar.gz  the Python sdist (builds from source with cargo)
#   presence-engine-<v>.tgz     the npm tarball, with prebuilds/linux-x64/libpresence.so
#   presence-sdk-<v>-linux-x86_64.tar.gz
#                               the C SDK: the tree `make install` lays out
# `make install PREFIX=/usr/local` (DESTDIR honoured) installs the C SDK. `make test-dist`
# builds all of it once, then installs and runs each artifact outside the repository with
# cargo and rustc off PATH (tests/dist/run.sh), and runs the READMEs' code blocks
# (tests/snippets/run.py).
#
# Built or installed here: target/dist/ (the build venv with maturin, ziglang and
# auditwheel; the SDK staging tree); the wheel's cargo target dir is mk/python.mk's.

TEST_SUITES += test-dist

DIST_DIR := $(ROOT)/dist
DIST_OUT := $(TARGET_DIR)/dist
DIST_VENV := $(DIST_OUT)/build-venv
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(ROOT)/Cargo.toml | head -n1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The SONAME build.rs gives the shared library: before 1.0 every minor may break the ABI.
SONAME := libpresence.so.$(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))
SDK_NAME := presence-sdk-$(VERSION)-linux-x86_64
SDK_TARBALL := $(DIST_DIR)/$(SDK_NAME).tar.gz
NPM_TARBALL := $(DIST_DIR)/presence-engine-$(VERSION).tgz
WHEEL_GLOB := $(DIST_DIR)/presence_engine-$(VERSION)-cp310-abi3-manylinux*_x86_64.whl
SDIST := $(DIST_DIR)/presence_engine-$(VERSION).tar.gz
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL_DIR = $(DESTDIR)$(PREFIX)
# Reproducible tarballs: the same inputs give the same bytes.
DIST_TAR := tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0

.PHONY: deps-dist dist dist-wheel dist-sdist dist-npm dist-sdk install test-dist

## cmake and pkg-config for the C SDK checks; patchelf is not needed (the wheel is not repaired).
DEPS_DIST := cmake pkg-config
APT_PACKAGES += $(DEPS_DIST)
deps-dist: deps-c deps-python deps-node $(APT_FIRST)
	$(call apt_install,$(DEPS_DIST))

## maturin with zig (PyPI's ziglang: no system cross toolchain) and auditwheel.
$(DIST_VENV)/.ready:
	@mkdir -p $(DIST_OUT)
	rm -rf $(DIST_VENV)
	$(PYTHON3) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install $(PY_PIP) "maturin>=1.9.4,<2" "ziglang>=0.13,<0.16" "auditwheel>=6"
	@touch $@

## The manylinux2014 abi3 wheel. maturin checks the policy itself (--auditwheel check),
## and `auditwheel show` must agree that the wheel is manylinux_2_17 with nothing to graft.
dist-wheel: deps-python $(DIST_VENV)/.ready
	@mkdir -p $(DIST_DIR)
	rm -f $(WHEEL_GLOB)
	@echo "dist: building the manylinux wheel (cargo + zig; a few minutes the first time)"
	cd $(PY_DIR) && CARGO_TARGET_DIR=$(PY_OUT)/cargo PATH=$(DIST_VENV)/bin:$$PATH \
	  $(DIST_VENV)/bin/maturin build --release --zig --compatibility manylinux2014 \
	  --auditwheel check --interpreter $(DIST_VENV)/bin/python --out $(DIST_DIR)
	$(DIST_VENV)/bin/auditwheel show $(WHEEL_GLOB) | tee $(DIST_OUT)/auditwheel.txt
	tr -s ' \n' '  ' < $(DIST_OUT)/auditwheel.txt \
	  | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"'
	@echo "auditwheel: the wheel is manylinux_2_17_x86_64"

## The sdist: maturin packs the binding crate with the core it depends on (../../core).
dist-sdist: deps-python $(DIST_VENV)/.ready
	@mkdir -p $(DIST_DIR)
	rm -f $(SDIST)
	cd $(PY_DIR) && $(DIST_VENV)/bin/maturin sdist --out $(DIST_DIR)

## The npm tarball: prepack (bindings/node/scripts/prepack.js) copies the release library
## into prebuilds/linux-x64/ and postpack takes it away again.
dist-npm: deps-node lib
	@mkdir -p $(DIST_DIR)
	rm -f $(NPM_TARBALL)
	cd $(NODE_PKG) && $(NODE_PACK_LOCK) $(NPM) pack --silent --pack-destination $(DIST_DIR) >/dev/null
	@test -f $(NPM_TARBALL)

## The C SDK: include/, lib/ (libpresence.so.$(VERSION) with its SONAME and symlinks,
## libpresence.a without debug info and without the LLVM bitcode that rustc embeds for
## LTO, which no C linker reads), lib/pkgconfig/presence.pc and lib/cmake/presence/.
## presence.pc and the CMake files find the tree relative to themselves, so the SDK works
## from wherever it is unpacked.
install: lib
	@test -n "$(PREFIX)" || { echo "PREFIX is empty"; exit 1; }
	install -d $(INSTALL_DIR)/include $(INSTALL_DIR)/lib/pkgconfig $(INSTALL_DIR)/lib/cmake/presence
	install -m 644 $(ROOT)/include/presence.h $(INSTALL_DIR)/include/presence.h
	install -m 755 $(TARGET_DIR)/release/libpresence.so $(INSTALL_DIR)/lib/libpresence.so.$(VERSION)
	ln -sfn libpresence.so.$(VERSION) $(INSTALL_DIR)/lib/$(SONAME)
	ln -sfn $(SONAME) $(INSTALL_DIR)/lib/libpresence.so
	strip --strip-debug -R .llvmbc -R .llvmcmd -o $(INSTALL_DIR)/lib/libpresence.a $(TARGET_DIR)/release/libpresence.a
	chmod 644 $(INSTALL_DIR)/lib/libpresence.a
	sed -e 's/@VERSION@/$(VERSION)/g' $(ROOT)/mk/sdk/presence.pc.in > $(INSTALL_DIR)/lib/pkgconfig/presence.pc
	sed -e 's/@VERSION@/$(VERSION)/g' -e 's/@SONAME@/$(SONAME)/g' \
	  $(ROOT)/mk/sdk/presenceConfig.cmake.in > $(INSTALL_DIR)/lib/cmake/presence/presenceConfig.cmake
	sed -e 's/@VERSION@/$(VERSION)/g' \
	  $(ROOT)/mk/sdk/presenceConfigVersion.cmake.in > $(INSTALL_DIR)/lib/cmake/presence/presenceConfigVersion.cmake
	@echo "installed the C SDK into $(INSTALL_DIR)"

dist-sdk: lib
	@mkdir -p $(DIST_DIR)
	rm -rf $(DIST_OUT)/sdk && mkdir -p $(DIST_OUT)/sdk
	$(MAKE) --no-print-directory install PREFIX=$(DIST_OUT)/sdk/$(SDK_NAME) DESTDIR=
	$(DIST_TAR) -czf $(SDK_TARBALL) -C $(DIST_OUT)/sdk $(SDK_NAME)

dist: dist-wheel dist-sdist dist-npm dist-sdk
	@cd $(DIST_DIR) && ls -l $(notdir $(wildcard $(WHEEL_GLOB)) $(SDIST) $(NPM_TARBALL) $(SDK_TARBALL))

## The snippet runner's own tests; then the artifacts of this build only, installed and run
## outside the repository without cargo (tests/dist/run.sh), then the sdist built from
## source with cargo (dev profile: the check is that it is complete and compiles).
test-dist: deps-dist dist
	$(PYTHON3) $(ROOT)/tests/snippets/test_run.py
	DIST_DIR=$(DIST_DIR) VERSION=$(VERSION) SONAME=$(SONAME) PYTHON3=$(PYTHON3) NODE=$(NODE) NPM=$(NPM) \
	  DIST_VENV=$(DIST_VENV) PY_CARGO_DIR=$(PY_OUT)/cargo REPORT=$(DIST_OUT)/report.txt \
	  bash $(ROOT)/tests/dist/run.sh
