# Fuzzing (fuzz/): libFuzzer targets on the nightly toolchain, three of them:
#   ops      operation sequences through the C ABI against a plain model, both formats
#   cluster  cluster ingest: raw bytes, genuine messages, and mutated ones signed again
#   parse    config and meta parsing
# `make fuzz` runs each for FUZZ_SECONDS (60); `make test` runs each for FUZZ_TEST_SECONDS
# (15), so that CI catches a regression. Each run starts from the committed seeds
# (fuzz/seeds/<target>/) and the corpus earlier runs grew (target/fuzz/corpus/<target>/);
# a crash stops the run, fails the target, and leaves its input in
# target/fuzz/artifacts/<target>/; `make fuzz-tmin FUZZ_TARGET=... FUZZ_INPUT=...`
# minimises it. tests/regressions.rs replays the seeds and every minimised crash
# (fuzz/regressions/<target>/) on stable.
#
# The targets are built optimised and without overflow checks, as the library ships, under
# AddressSanitizer, with the instrumentation `cargo fuzz build -O` (cargo-fuzz 0.13) gives
# them: the same cargo command and RUSTFLAGS, written out here so that no run has to
# compile cargo-fuzz itself first (a minute and more of CPU on a fresh machine). The crate
# keeps cargo-fuzz's layout, so `cargo fuzz` works on it as well.

TEST_SUITES += test-fuzz

FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 15
FUZZ_TARGETS := ops cluster parse
FUZZ_OUT := $(TARGET_DIR)/fuzz
# libFuzzer's coverage feedback (SanitizerCoverage: inline 8-bit counters, the PC table,
# compared values, stack depth), `cfg(fuzzing)`, ASan, and one codegen unit, which keeps
# the sancov passes from blocking ThinLTO's inlining. An explicit --target keeps these
# flags off the build scripts.
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address \
  -Cllvm-args=-sanitizer-coverage-stack-depth -Ccodegen-units=1
FUZZ_PROFILE_DIR = $(FUZZ_OUT)/$(HOST_TRIPLE)/release
# MAKEFLAGS= as in mk/rust.mk: nightly cargo warns about make's jobserver under make -j.
FUZZ_CARGO = cd $(ROOT)/fuzz && MAKEFLAGS= RUSTUP_TOOLCHAIN=nightly RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
  $(CARGO) build --release --config 'profile.release.debug="line-tables-only"' \
  --target $(HOST_TRIPLE) --target-dir $(FUZZ_OUT)
# ASan's one-definition-rule check misfires on Rust's duplicated generics.
FUZZ_ENV := ASAN_OPTIONS=detect_odr_violation=0

.PHONY: deps-nightly fuzz fuzz-build fuzz-tmin test-fuzz

## The nightly toolchain (machines of this kind ship it beside stable) with its rust-src,
## which -Zbuild-std (mk/sanitize.mk) needs; both are no-ops once present.
deps-nightly:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@rustup component list --toolchain nightly --installed | grep -q '^rust-src' || \
	  rustup component add rust-src --toolchain nightly

fuzz-build: deps-nightly
	$(FUZZ_CARGO) --bins

# $(1): seconds. Every target runs even when one fails; the run fails at the end if any
# did. -timeout: one input running over 10 s is a hang.
define fuzz_run
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/artifacts/$$t; \
	  echo "fuzzing $$t for $(1) s (log: $(FUZZ_OUT)/$$t.log)"; \
	  $(FUZZ_ENV) $(FUZZ_PROFILE_DIR)/$$t -max_total_time=$(1) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_OUT)/artifacts/$$t/ $(FUZZ_OUT)/corpus/$$t $(ROOT)/fuzz/seeds/$$t \
	    > $(FUZZ_OUT)/$$t.log 2>&1 \
	    || failed="$$failed $$t"; \
	  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|ERROR|panicked at|Test unit written' \
	    $(FUZZ_OUT)/$$t.log || true; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi
endef

fuzz: fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

test-fuzz: fuzz-build
	cd $(ROOT)/fuzz && $(CARGO) fmt --check
	$(call fuzz_run,$(FUZZ_TEST_SECONDS))

## A crashing input made as small as libFuzzer can while it still crashes (what
## `cargo fuzz tmin` does); the result is written beside it as minimized-from-*.
fuzz-tmin: fuzz-build
	@test -n "$(FUZZ_TARGET)" -a -f "$(FUZZ_INPUT)" || { echo "usage: make fuzz-tmin FUZZ_TARGET=<target> FUZZ_INPUT=<file>"; exit 1; }
	$(FUZZ_ENV) $(FUZZ_PROFILE_DIR)/$(FUZZ_TARGET) -minimize_crash=1 -runs=255 \
	  -artifact_prefix=$(dir $(abspath $(FUZZ_INPUT))) $(FUZZ_INPUT)
