# Fuzzing (fuzz/): cargo-fuzz with libFuzzer on the nightly toolchain, three targets:
#   ops      operation sequences through the C ABI against a plain model, both formats
#   cluster  cluster ingest: raw bytes, genuine messages, and mutated ones signed again
#   parse    config and meta parsing
# `make fuzz` runs each for FUZZ_SECONDS (60); `make test` runs each for FUZZ_TEST_SECONDS
# (15), so that CI catches a regression. Each run starts from the committed seeds
# (fuzz/seeds/<target>/) and the corpus earlier runs grew (target/fuzz/corpus/<target>/);
# a crash stops the run, fails the target, and leaves its input in
# target/fuzz/artifacts/<target>/. tests/regressions.rs replays the seeds and every
# minimised crash (fuzz/regressions/<target>/) on stable.
#
# The targets are built optimised and without overflow checks, as the library ships, under
# AddressSanitizer. cargo-fuzz comes from crates.io into target/tools/ on first use.

TEST_SUITES += test-fuzz

FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 15
FUZZ_TARGETS := ops cluster parse
FUZZ_OUT := $(TARGET_DIR)/fuzz
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TARGET_DIR)/tools/bin/cargo-fuzz
# Run from fuzz/ so that cargo-fuzz finds its crate; nightly without touching the default.
FUZZ := cd $(ROOT)/fuzz && RUSTUP_TOOLCHAIN=nightly $(CARGO_FUZZ)
FUZZ_BUILD_FLAGS := -O --target-dir $(FUZZ_OUT)

.PHONY: deps-nightly fuzz fuzz-build test-fuzz

## The nightly toolchain (machines of this kind ship it beside stable) with its rust-src,
## which -Zbuild-std (mk/sanitize.mk) needs; both are no-ops once present.
deps-nightly:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@rustup component list --toolchain nightly --installed | grep -q '^rust-src' || \
	  rustup component add rust-src --toolchain nightly

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION) --root $(TARGET_DIR)/tools

fuzz-build: deps-nightly $(CARGO_FUZZ)
	$(FUZZ) build $(FUZZ_BUILD_FLAGS)

# $(1): seconds. Every target runs even when one fails; the run fails at the end if any
# did. -timeout: one input running over 10 s is a hang.
define fuzz_run
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/artifacts/$$t; \
	  echo "fuzzing $$t for $(1) s (log: $(FUZZ_OUT)/$$t.log)"; \
	  $(FUZZ) run $(FUZZ_BUILD_FLAGS) $$t $(FUZZ_OUT)/corpus/$$t $(ROOT)/fuzz/seeds/$$t -- \
	    -max_total_time=$(1) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_OUT)/artifacts/$$t/ > $(FUZZ_OUT)/$$t.log 2>&1 \
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
