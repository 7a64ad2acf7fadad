# The core: formatting, lints, Rust unit/integration tests (which also compile the header
# as C99 and C++17 and run the C and C++ harnesses, see tests/c_abi.rs).

TEST_SUITES += test-rust

.PHONY: test-rust
test-rust: deps-c
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(CARGO) test --release --test model --test concurrency
