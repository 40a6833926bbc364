# Everyday verbs. `make test` and `make demo` set up what they need on a fresh machine.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install redis-server demo test test-rust test-python lint bench generate

install:                 ## build the extension (release) and install the package with test/dev tools and Ray
	$(PIP) -e '.[test,dev,ray]'

demo:                    ## set up and run the main job: the embedded demo
	$(PIP) .
	decision-engine demo

redis-server:            ## the Redis store's tests start their own redis-server: install it (Debian) when missing
	@command -v redis-server >/dev/null || { \
	    command -v apt-get >/dev/null || { echo "make: the Redis store tests need redis-server; install it" >&2; exit 1; }; \
	    sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; \
	}

test: install redis-server test-rust test-python   ## set up and run every test

test-rust:
	cargo test -p decision-engine-core -p decision-engine-py

test-python:
	$(PY) -m pytest

lint:                    ## the checks CI runs besides tests
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches seeds
	$(PY) -m ruff format --check python tests benches seeds
	$(PY) -m mypy
	$(PY) -m mypy.stubtest decision_engine._core
	$(MAKE) --no-print-directory generate    # generated gRPC code must match protos/
	git diff --exit-code -- python/decision_engine/v1
	test -z "$$(git status --porcelain -- python/decision_engine/v1)"

bench:                   ## side-by-side benchmarks against peers (needs `pip install '.[bench]'`)
	$(PIP) -e '.[bench]'
	$(PY) -m pytest benches --benchmark-only

generate:                ## regenerate the gRPC code (python/decision_engine/v1) from protos/; commit it
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=python --pyi_out=python --grpc_python_out=python \
		protos/decision_engine/v1/*.proto
