# Sanitizers over the code that runs threads and the code that holds `unsafe`, on nightly:
#   test-tsan  ThreadSanitizer over tests/concurrency.rs (workers tracking while a poller
#              polls), with the standard library rebuilt instrumented (-Zbuild-std, which
#              needs nightly's rust-src: deps-nightly in mk/fuzz.mk installs it)
#   test-miri  Miri over the unit tests of core/src/table.rs (open-addressing tables, the
#              prefetch intrinsic) and core/src/hash.rs (SipHash, getrandom); the miri
#              component is installed on first use
# Each has its own target dir under target/sanitize/, so the instrumented builds never
# invalidate the ordinary one. Both build without the Redis link, which neither uses.

TEST_SUITES += test-sanitize

SAN_OUT := $(TARGET_DIR)/sanitize
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
# Fewer steps than the plain run: TSan slows each one about tenfold, and races show in
# the first thousands as well as in the last.
TSAN_STEPS ?= 20000

.PHONY: test-sanitize test-tsan test-miri deps-miri

deps-miri: deps-nightly
	@rustup component list --toolchain nightly --installed | grep -q '^miri' || \
	  rustup component add miri --toolchain nightly

# MAKEFLAGS= as in mk/rust.mk: nightly cargo and Miri warn about make's jobserver too.
test-tsan: deps-nightly
	MAKEFLAGS= CARGO_TARGET_DIR=$(SAN_OUT)/tsan RUSTUP_TOOLCHAIN=nightly \
	  RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
	  PRESENCE_STRESS_STEPS=$(TSAN_STEPS) \
	  TSAN_OPTIONS="halt_on_error=1" \
	  $(CARGO) test -Zbuild-std --target $(HOST_TRIPLE) --no-default-features --test concurrency

test-miri: deps-miri
	MAKEFLAGS= CARGO_TARGET_DIR=$(SAN_OUT)/miri RUSTUP_TOOLCHAIN=nightly \
	  $(CARGO) miri test -p presence-core --lib --no-default-features -- table:: hash::

test-sanitize: test-tsan test-miri
