# pyexecd: the README's two commands, `make run` and `make test`, plus helpers.
# Both install missing Debian packages first (scripts/install-deps), so they work on a fresh
# Debian 12 machine with nothing but what this repository installs.

BUILD   ?= build
PYTHON  ?= /usr/bin/python3
PORT    ?= 8080
MESON_OPTS ?=
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo "sudo -E")
PYTEST_FLAGS ?= -q
PYTEST  := $(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_FLAGS)

.PHONY: all deps build run test test-unit test-integration test-security test-deploy test-client \
	test-browser test-asan \
	bench bench-phases soak fuzz image verify-image test-vm build-clang format check-format clean

all: build

deps:
	./scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(MESON_OPTS) $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Serves on 0.0.0.0:$(PORT). pyexecd needs root to build its sandboxes.
run: build
	$(SUDO) $(BUILD)/pyexecd --port $(PORT)

test: build test-unit test-integration test-security test-deploy test-client test-browser

test-unit: build
	meson test -C $(BUILD) --print-errorlogs

test-integration: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd $(SUDO) $(PYTEST) tests/integration

test-security: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd $(SUDO) $(PYTEST) tests/security

# The Python client (clients/python), pip-installed into a temporary directory, against a
# pyexecd it starts.
test-client: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd $(SUDO) $(PYTEST) tests/client

# The playground (GET /) in headless Chromium (Debian's chromium, chromium-driver and
# python3-selenium); a screenshot of each test lands in $(BUILD)/screenshots.
test-browser: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd PYEXECD_SCREENSHOTS=$(abspath $(BUILD))/screenshots \
		$(SUDO) $(PYTEST) tests/browser

# Static checks of deploy/ (Dockerfile, Cloud Run, Kubernetes, scripts): no root, no engine.
test-deploy: deps
	$(PYTEST) tests/deploy

IMAGE ?= pyexecd
image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

# pyexecd where its users run it: qemu guests with cgroup v2, a Docker engine, Debian 13
# (tests/vm/vm.py). LANE=v2-native|docker|debian-13|quick (default: the three, whole).
LANE ?=
test-vm: deps
	./scripts/install-deps --vm
	$(SUDO) $(PYTHON) tests/vm/vm.py --build-dir $(BUILD) $(if $(LANE),--lane $(LANE))

# Builds and runs the image without a Docker engine (podman + a debootstrap base);
# not part of `make test`.
verify-image:
	$(SUDO) deploy/verify-image.sh

# Benchmarks (not part of `make test`): appends a report to bench/RESULTS.md.
BENCH_SECONDS ?= 5
bench: build
	./scripts/install-deps --bench
	BENCH_SECONDS=$(BENCH_SECONDS) $(SUDO) $(PYTHON) bench/bench.py

# Where a request's CPU goes, step by step: a build whose sandboxes report each step's CPU
# time and page faults (-Dphase_trace=true, never for production), driven by bench/phases.py.
PHASES_BUILD ?= build-phases
bench-phases: deps
	./scripts/install-deps --bench
	[ -f $(PHASES_BUILD)/build.ninja ] || meson setup -Dphase_trace=true $(PHASES_BUILD)
	ninja -C $(PHASES_BUILD)
	PYEXECD_BIN=$(abspath $(PHASES_BUILD))/pyexecd $(SUDO) $(PYTHON) bench/phases.py

# The long soak: 50 000 mixed, partly hostile requests from 8 clients (the short form runs in
# `make test`), with a progress line every 10 s. SOAK_FLAGS passes more options, e.g.
# SOAK_FLAGS=--fail-fast to stop at the first unexpected answer (bench/soak.py --help).
SOAK_REQUESTS ?= 50000
SOAK_FLAGS ?=
soak: build
	$(SUDO) $(PYTHON) bench/soak.py --requests $(SOAK_REQUESTS) --clients 8 $(SOAK_FLAGS)

# libFuzzer targets (clang, ASan+UBSan): request parser, result decoder, config parser, each
# FUZZ_SECONDS in turn. Inputs that reach a new branch are merged into tests/fuzz/corpus/
# (review, then commit); crashes land in $(FUZZ_BUILD)/fuzz-artifacts/. `make test` replays
# the corpora.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
fuzz:
	./scripts/install-deps --fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(FUZZ_SECONDS)

# ASan + UBSan build of everything, unit and integration suites against it. RLIMIT_AS is
# off in this build (ASan reserves terabytes of shadow); the cgroup limits memory.
ASAN_BUILD ?= build-asan
test-asan: deps
	[ -f $(ASAN_BUILD)/build.ninja ] || meson setup -Db_sanitize=address,undefined -Db_lundef=false $(ASAN_BUILD)
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs
	PYEXECD_BIN=$(abspath $(ASAN_BUILD))/pyexecd PYEXECD_SANITIZED=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(SUDO) $(PYTEST) tests/integration

# The same tree built with clang (-Wall -Wextra -Werror, as with gcc): the house rule is
# that both compilers build it clean.
CLANG_BUILD ?= build-clang
build-clang:
	./scripts/install-deps --fuzz
	[ -f $(CLANG_BUILD)/build.ninja ] || CC=clang meson setup $(MESON_OPTS) $(CLANG_BUILD)
	ninja -C $(CLANG_BUILD)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

# The house style (.clang-format), checked without changing a file: CI runs it.
check-format:
	./scripts/install-deps --fuzz
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(ASAN_BUILD) $(CLANG_BUILD)
