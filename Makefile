# pyexecd: the README's two commands, `make run` and `make test`, plus helpers.
# Both install missing Debian packages first (scripts/install-deps), so they work on a fresh
# Debian 12 machine with nothing but what this repository installs.

BUILD   ?= build
PYTHON  ?= /usr/bin/python3
PORT    ?= 8080
MESON_OPTS ?=
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo "sudo -E")
PYTEST  := $(PYTHON) -m pytest -p no:cacheprovider -q

.PHONY: all deps build run test test-unit test-integration test-security format clean

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

test: build test-unit test-integration test-security

test-unit: build
	meson test -C $(BUILD) --print-errorlogs

test-integration: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd $(SUDO) $(PYTEST) tests/integration

test-security: build
	PYEXECD_BIN=$(abspath $(BUILD))/pyexecd $(SUDO) $(PYTEST) tests/security

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
