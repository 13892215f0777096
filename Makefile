# Two commands on a fresh machine (see README.md):
#   make demo   set up, then the quick comparison (every model, TF and PyTorch, 2 seeds) on the
#               embedded offline dataset: tables, plots and runs/demo/report.html
#   make test   set up (and headless Chromium for the report test), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench browser clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: requirements/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements/cpu.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(BIN)/gan-diffusion compare --preset quick --out runs/demo
	@echo "report: runs/demo/report.html  tables: runs/demo/tables/  (rerun: resumes)"
	@echo "TensorBoard: tensorboard --logdir runs/demo/runs"

# TEST_WORKERS pytest-xdist processes, one intra-op thread each (tests/conftest.py); the files
# that build Stable Diffusion at full size run in one of them, one after another
TEST_WORKERS ?= 2
test: setup browser
	HF_HUB_OFFLINE=1 GAN_DIFFUSION_NO_DOWNLOAD=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# Headless Chromium for tests/compare/test_compare.py's report screenshot (Debian/Ubuntu
# `chromium`).
# Does nothing when it is installed; without apt or root the test skips (CI requires it).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing chromium (headless browser for the report test)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "could not install chromium: the report browser test will be skipped"; }

bench: setup
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.frameworks

clean-venv:
	rm -rf $(VENV)
