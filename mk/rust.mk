# The workspace (the C library at the root, the core in core/): formatting, lints, unit
# tests of both crates and the integration tests of tests/ (which also compile the header
# as C99 and C++17, run the C and C++ harnesses (tests/c_abi.rs) and start redis-server
# for the multi-process cluster tests (tests/cluster_redis.rs)).

TEST_SUITES += test-rust

.PHONY: test-rust
# MAKEFLAGS= for cargo test: under `make test` (make -j) it names a jobserver that only
# recursive recipes can reach, and the doc-tests' rustdoc would warn that it cannot.
test-rust: deps-c deps-redis
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --no-default-features -- -D warnings
	MAKEFLAGS= $(CARGO) test
	$(CARGO) test --release --test model --test concurrency
