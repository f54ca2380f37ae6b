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

# the main job: one BCM5820 on a 66 MHz bus, two processes doing verified
# /dev/crypto 3DES-SHA1, with a waveform and a GTKWave save file
run: venv
	$(VENV)/bin/ocfsim run --card bcm5820 --alg 3des-sha1 --size 256 --ops 2 --threads 2 \
	  --vcd build/run.vcd

test: venv
	$(PY) -m pytest -q -n 2

test-all: venv
	$(PY) -m pytest -q -n 2 -m ''

bench: venv
	$(VENV)/bin/ocfsim bench pci

clean:
	rm -rf build .cache
