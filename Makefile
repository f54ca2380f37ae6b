# ocfsim — the two set-up commands are `make run` and `make test`;
# both create or refresh .venv through `make venv` and need nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv run test test-all bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: venv
	$(VENV)/bin/ocfsim dma --bytes 4096 --cards 2 --vcd build/dma.vcd

test: venv
	$(PY) -m pytest -q -n 2

test-all: venv
	$(PY) -m pytest -q -n 2 -m ''

bench: venv
	$(VENV)/bin/ocfsim bench pci

clean:
	rm -rf build .cache
