# pushgod — the two commands of the quick start, and the developer's helpers.
# `make run` and `make test` work on a fresh Debian / Ubuntu / Raspberry Pi OS with python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8750

.PHONY: run test lint format bench docs clean system-deps deb lock test-arm64

# System packages the venv and the tests need; installed with apt-get when run as root.
SYSTEM_PACKAGES := python3-venv curl mosquitto mosquitto-clients chromium

system-deps:
	@./.ci/system-deps $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	PUSHGOD_STORAGE_DATA_DIR=./var PUSHGOD_SERVER_HOST=$(HOST) PUSHGOD_SERVER_PORT=$(PORT) \
		$(BIN)/pushgod serve --demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/pushgod config example > contrib/pushgod.toml
	$(BIN)/python -c 'from pushgod.config import markdown_reference as m; print(m(), end="")' \
		> docs/configuration.md
	$(BIN)/python -m pushgod.cli.reference > docs/cli.md

bench: $(STAMP)
	$(BIN)/python bench/run.py

# dist/pushgod_<version>-1_{amd64,arm64}.deb from packaging/requirements.lock (packaging/README.md).
deb:
	@./.ci/system-deps python3-venv
	packaging/build.sh deb amd64
	packaging/build.sh deb arm64

# Re-pin packaging/requirements.lock (from pyproject.toml) and the build tools, from PyPI.
lock:
	@./.ci/system-deps python3-venv
	packaging/build.sh lock

# The arm64 .deb installed and run in an arm64 root under qemu-user, as root (packaging/README.md).
# Not part of `make test`: 2-4 minutes, more when the root is first made.
test-arm64:
	@./.ci/system-deps python3-venv
	packaging/build.sh deb arm64
	packaging/test/arm64.sh

clean:
	rm -rf $(VENV) var build *.egg-info
