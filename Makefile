# faceopt: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.faceopt-installed
SCALE  ?= smoke
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: help venv book book-full test unit nbval golden pages clean

help:
	@echo "make book       run every chapter at smoke scale and build the HTML book (the main job)"
	@echo "make test       unit tests, nbval on the golden smoke notebooks, and a book build check"
	@echo "make golden     re-run the chapters at smoke scale and update tests/golden"
	@echo "make pages      re-run the chapters at full scale: the book's committed pages"
	@echo "make book-full  build the HTML book from the committed full-scale pages"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

book: venv
	$(BIN)/faceopt book --scale smoke

book-full: venv
	$(BIN)/faceopt book --scale full --no-run

pages: venv
	$(BIN)/faceopt book --scale full

golden: venv
	$(BIN)/faceopt run --scale smoke --golden

test: venv
	$(BIN)/python -m pytest tests --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

clean:
	rm -rf _build
