# Entry points. `make serve` and `make test` are the README's two quick-start commands.
PY := .venv/bin/python
EPOCHS ?= 8

.PHONY: serve test lint setup-serve setup-dev data model bench-ood bench-serve clean

## Set up (serving install, no torch) and run the service on the default model.
serve: setup-serve
	$(PY) -m service --host 127.0.0.1 --port 8000 --model-dir models

## Set up everything the tests need and run them all (lint, types, unit, integration, live).
test: setup-dev
	$(PY) -m ruff check service training tests benchmarks deploy scripts
	$(PY) -m mypy service
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check service training tests benchmarks deploy scripts
	$(PY) -m ruff format --check service training tests
	$(PY) -m mypy service

setup-serve:
	bash scripts/setup.sh serve

setup-dev:
	bash scripts/setup.sh dev

## Fetch the Debian packages with the benchmark data (Fashion-MNIST, opencv-doc, fonts).
data:
	bash scripts/fetch_data.sh

## Train, evaluate, calibrate and export CE / LogitNorm / IsoMax+ into models/ (tau chosen on
## validation data). Checkpoints in runs/ make a re-run cheap.
# One torch thread by default: on a small shared machine OpenMP's spinning threads slow down
# several-fold whenever another process competes for a core (measured: 2 threads 2 it/s vs
# 1 thread 17 it/s under load). Raise TORCH_THREADS on a dedicated machine.
TORCH_THREADS ?= 1
model: setup-dev
	OMP_NUM_THREADS=$(TORCH_THREADS) $(PY) -m training.cli benchmark --epochs $(EPOCHS)

## Regenerate docs/ood-benchmark.md (same run as `model`; reuses finished checkpoints).
bench-ood: model

## Serving benchmark: load generator vs the service and raw ONNX Runtime; writes benchmarks/.
bench-serve: setup-dev
	$(PY) -m benchmarks.serve_bench

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
