# sigw: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck proto proto-lint errors clean bench bench-priority bench-watches browser screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## run: install into .venv and start the gateway on an embedded Redis with simulated demo regions
run: $(STAMP)
	$(BIN)/sigw pki init
	$(BIN)/sigw serve --demo

## test: lint, type-check, check the generated code and the proto, then run the whole test suite
test: $(STAMP) browser lint typecheck proto-lint
	$(BIN)/python -m pytest -q

## browser: Debian's Chromium and a Chinese font for the browser tests, promtool for the alert rules (installed
## once; needs root and apt)
browser:
	@test -x $(CHROMIUM) -a -n "$$(fc-list :lang=zh 2>/dev/null)" -a -x /usr/bin/promtool || { \
		echo "installing Debian's chromium, fonts-wqy-microhei and prometheus (promtool) for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium fonts-wqy-microhei prometheus; }

## screenshots: the status page at phone and desktop sizes into docs/screenshots (the README shows them)
screenshots: $(STAMP) browser
	SIGW_SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/browser -k screenshots

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters tests scripts bench

typecheck: $(STAMP)
	$(BIN)/mypy

proto-lint: $(STAMP)
	$(BIN)/buf lint

## errors: write the error catalogue (gateway/domain/reasons.py) out as proto/sigw/v1/errors.proto and the README's
## table, then regenerate the code (a test fails while either is stale)
errors: $(STAMP)
	$(BIN)/python scripts/error_catalogue.py
	$(BIN)/python scripts/gen_proto.py

## proto: regenerate gateway/_gen from proto/ (a test fails while it is stale)
proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## bench: the gateway side by side with a raw grpc.aio echo in one run (PROFILE=dir adds py-spy profiles)
bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run $(if $(PROFILE),--profile $(PROFILE))

## bench-priority: 20,000 ordinary messages for slow agencies, then military ones: each lane's queue wait
bench-priority: $(STAMP)
	$(BIN)/python -m bench.bench_priority

## bench-watches: a bystander's p99 with no watch open and with 2,000 WatchTransfer streams open
bench-watches: $(STAMP)
	$(BIN)/python -m bench.bench_watches
