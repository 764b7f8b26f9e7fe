# scaling-patterns: every target installs what it needs first (`make install` is idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
export PIPENV_IGNORE_VIRTUALENVS := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
PIPENV := $(PYTHON) -m pipenv
RUN := $(PIPENV) run

.PHONY: help install synth validate test check-settings clean docs bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.venv/.installed: Pipfile.lock
	@$(PIPENV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "pipenv==$(PIPENV_VERSION)"
	$(PIPENV) sync --dev
	@touch $@

install: .venv/.installed ## create .venv from Pipfile.lock (pipenv); no-op when up to date

check-settings: install ## validate settings.toml (or $$SCALING_PATTERNS_SETTINGS) only; writes nothing
	$(RUN) python main.py --check

synth: install ## synthesize every stack into cdktf.out/ (one process) and print a table
	$(RUN) python main.py

validate: synth ## terraform init -backend=false + validate for each stack (offline via a local provider mirror if present)
	$(RUN) python -m tooling.validate

test: install ## the whole test suite
	$(RUN) python -m pytest

bench: install ## synth wall time and peak memory vs. the import floor, with 1, 5 and 25 copies of each stack
	$(RUN) python -m tooling.bench --copies 1,5,25

docs: install ## regenerate the settings reference in README.md from the settings classes
	$(RUN) python -m tooling.settings_doc --write

clean: ## remove generated files (keeps state files and .venv)
	rm -rf cdktf.out .terraform .pytest_cache
