# Two entry points: `make quickstart` (set up, run the main job) and `make test`.
SHELL := /bin/bash
ROOT := $(abspath .)
# Use a local copy of the public datasets when one sits beside the project; otherwise
# the loaders download from the public sources into MNE's data folder.
BCI_DATA_DIR ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)
export BCI_DATA_DIR
# Keep every LSL packet on this machine.
LSLAPICFG ?= $(ROOT)/tests/lsl_api.cfg
export LSLAPICFG
export MOABB_DOWNLOAD_PROVIDER ?= upstream
OUT ?= results/quickstart

.PHONY: setup quickstart test lint docs
setup:
	./scripts/setup.sh

quickstart: setup
	.venv/bin/bci evaluate --dataset eegbci --subjects 1-10 --task left_right \
	  --pipelines csp_lda,fbcsp,ts_lr,mdm --protocol within-session --out $(OUT) --n-jobs 2

test: setup
	.venv/bin/python -m pytest -q tests

lint: setup
	.venv/bin/ruff check bci_toolkit tests benchmarks
	.venv/bin/lint-imports

# The documentation site, warnings as errors (mkdocs.yml: strict).
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site
