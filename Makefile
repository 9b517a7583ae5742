# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
CARGO ?= cargo

.PHONY: run test bench fuzz lint test-deps

run:
	$(CARGO) run --release -p dingguard -- serve

test-deps:
	./scripts/install-test-deps.sh

test: test-deps lint
	$(CARGO) build -p dingguard
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace; \
	else \
		$(CARGO) test --workspace; \
	fi

# The properties of tests/tests/integration/fuzz.rs with many more generated cases, optimised; the corpus in fuzz/ first.
fuzz: test-deps
	DINGGUARD_FUZZ_CASES=$${DINGGUARD_FUZZ_CASES:-20000} $(CARGO) test --release -p dingguard-tests --test integration -- fuzz:: --test-threads 2

bench: test-deps
	$(CARGO) build --release -p dingguard -p dingguard-bench
	./target/release/dingguard-bench

# Licences and bans (deny.toml), checked offline against Cargo.lock; the tool is built once into .tools/.
DENY := .tools/bin/cargo-deny
$(DENY):
	$(CARGO) install --locked --quiet --root .tools --no-default-features --version 0.20.2 cargo-deny

lint: $(DENY)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(DENY) check licenses bans
