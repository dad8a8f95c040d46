# companion: two commands on a fresh Debian/Ubuntu/Raspberry Pi OS machine:
#   make run    set everything up and talk to the robot on the default mic and speaker
#   make test   set everything up and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# llama-cpp-python compiles from source. A native (-march=native) build crashes on some
# x86 CPUs with AMX; a portable build is the safe default. Override: make CMAKE_ARGS=...
CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export CMAKE_ARGS
PIP := $(BIN)/python -m pip

.PHONY: run demo test lint setup setup-dev system-deps install-xtts install-studio clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools<81' wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	scripts/system-deps.sh runtime
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	scripts/system-deps.sh runtime test
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev
system-deps:
	scripts/system-deps.sh runtime test

run: setup
	$(BIN)/companion run

# paced by the recording's clock (21 s), as a person talks: the speculative transcript runs in
# the pauses, so the response times printed are what a user gets (--fast would add the STT to each)
demo: setup
	$(BIN)/companion run --input tests/fixtures/demo.wav --output-dir out/demo --persona rocky
	@echo "replies: out/demo/turn-*.wav, transcript: out/demo/transcript.jsonl (timings_ms.response: first reply sample - end of speech)"

bench: setup-dev
	$(BIN)/companion bench --json out/bench.json --plot out/bench.png

test: setup-dev
	$(BIN)/python -m pytest -q

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check companion
	$(BIN)/mypy

# Coqui XTTS v2 in the same venv (one Python, one environment): see requirements-xtts.txt
install-xtts: $(VENV)/.installed-xtts
$(VENV)/.installed-xtts: $(VENV)/.installed requirements-xtts.txt
	scripts/system-deps.sh runtime xtts
	$(PIP) install --quiet -r requirements-xtts.txt
	$(PIP) install --quiet --no-deps resemblyzer==0.1.4
	@touch $@

# voice studio (companion voice studio/review/export): PyAV, torch, resemblyzer
install-studio: $(VENV)/.installed
	$(PIP) install --quiet -e '.[studio]'
	$(PIP) install --quiet --no-deps resemblyzer==0.1.4

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
