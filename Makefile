# Two commands for a new user:  `make run` (the main experiment) and `make test` (the whole suite).
# Both create .venv when it is missing and install the project into it.
#
# TORCH_SPEC pins the torch build pip installs first. The default takes the CPU wheel these
# machines keep on disk; on a CUDA machine override it, e.g.
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN_ARGS   ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test install install-dev lint figures clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when the package metadata changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python -m experiments.dqn_atari --env-id ALE/Breakout-v5 --preset drq_eps $(RUN_ARGS)

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

# The README's learning-curve pictures, redrawn from the committed summaries under results/.
figures: install
	$(BIN)/python -m experiments.compare results/learning/classic-curves.csv --tag eval/episodic_return --last 1 \
	  --out docs/figures/learning/classic
	$(BIN)/python -m experiments.compare results/learning/memory-curves.csv --tag eval/episodic_return --score best \
	  --baseline ppo-none-repeatprevious --normalize minmax --out docs/figures/learning/memory
	$(BIN)/python -m benchmarks.length_figure results/learning/memory.csv --env copy --chance 4 \
	  --out docs/figures/learning/copy-lengths.png
	$(BIN)/python -m experiments.compare results/pqn/breakout --tag eval/episodic_return --last 1 \
	  --out docs/figures/pqn/breakout
	$(BIN)/python -m experiments.babi_report results/babi/joint-qa1-qa2 --difference dnc lstm \
	  --difference transformer lstm --out docs/figures/babi/joint-qa1-qa2
	for what in cartpole-po popgym; do \
	  $(BIN)/python -m experiments.compare results/memory-agents/$$what.csv --tag eval/episodic_return --score best \
	    --baseline agent.core=none --normalize minmax --out docs/figures/memory-agents/$$what/best; \
	  $(BIN)/python -m experiments.compare results/memory-agents/$$what.csv --tag eval/episodic_return --last 1 \
	    --baseline agent.core=none --normalize minmax --out docs/figures/memory-agents/$$what/final; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
