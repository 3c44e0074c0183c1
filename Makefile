# Every target sets up .venv first (idempotent: skipped when requirements are unchanged), see
# scripts/setup.sh; the recipes live in scripts/tasks.sh so they also work without make.
#
#   make book                 set up and build the book -> _build/html/index.html
#   make test                 set up and run the test suite
#   make reproduce [PROFILE=cpu] [NAMES="magnitude_mlp depth"] [ARGS="-p epochs '[1]' --force"]
#                             (no PROFILE: each page with the profile that produced it)
#                             execute notebooks into book/experiments (skips unchanged ones)
#   make ci-notebooks         execute every notebook (quick profile) into a temporary folder
#   make book-strict          build the book with warnings as errors (-W -n --keep-going)
#   make lint                 set up and run `ruff check .` (configured in pyproject.toml)
#   make setup | clean        (WITH_LAB=1 make setup also installs JupyterLab)

PYTHON ?= python3
VENV ?= .venv
PROFILE ?=
NAMES ?=
ARGS ?=
export PYTHON VENV PROFILE NAMES ARGS

.PHONY: help setup book book-strict test reproduce ci-notebooks clean lint

help:
	@sed -n '1,13p' Makefile

setup book book-strict test reproduce ci-notebooks clean:
	@scripts/tasks.sh $@

lint:
	@scripts/setup.sh
	$(VENV)/bin/ruff check .
