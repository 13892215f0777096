# Two commands on a fresh machine (see README.md):
#   make demo   set up, then train DCGAN in TF and in PyTorch on the embedded offline dataset
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EPOCHS ?= 20

.PHONY: setup demo test bench clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: requirements/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements/cpu.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	@for be in tf torch; do \
	  out=runs/demo-$$be; resume=""; \
	  [ -f $$out/checkpoints/latest.npz ] && resume="--resume"; \
	  $(BIN)/gan-diffusion train --backend $$be --model dcgan --dataset digits \
	      --epochs $(EPOCHS) --out $$out $$resume || exit 1; \
	  $(BIN)/gan-diffusion sample --run $$out --n 64 --out $$out/final_grid.png || exit 1; \
	done
	@echo "sample grids: runs/demo-tf/final_grid.png runs/demo-torch/final_grid.png"
	@echo "per-epoch logs: runs/demo-*/history.json (time, images/s, losses)"

test: setup
	HF_HUB_OFFLINE=1 GAN_DIFFUSION_NO_DOWNLOAD=1 $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/throughput.py

clean-venv:
	rm -rf $(VENV)
