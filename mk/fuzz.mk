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

# $(1): target, $(2): seconds. -timeout: one input running over 10 s is a hang.
define fuzz_run
	@mkdir -p $(FUZZ_OUT)/corpus/$(1) $(FUZZ_OUT)/artifacts/$(1)
	@echo "fuzzing $(1) for $(2) s"
	$(FUZZ) run $(FUZZ_BUILD_FLAGS) $(1) $(FUZZ_OUT)/corpus/$(1) $(ROOT)/fuzz/seeds/$(1) -- \
	  -max_total_time=$(2) -timeout=10 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_OUT)/artifacts/$(1)/ 2>&1 | tee $(FUZZ_OUT)/$(1).log | grep -E '^#[0-9]+ +(pulse|DONE)|^stat::|ERROR|panicked'

endef

fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SECONDS)))

test-fuzz: fuzz-build
	cd $(ROOT)/fuzz && $(CARGO) fmt --check
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_TEST_SECONDS)))
