# syntax=docker/dockerfile:1
#
# OOD scoring service image. Two runtime targets:
#   docker build -t ood-service:cpu .                    # default (last stage): CPU, python slim
#   docker build -t ood-service:gpu --target gpu .       # CUDA 12 + cuDNN 9, onnxruntime-gpu
# Only the serving install goes in (`pip install .[cpu]` or `.[gpu]`: no torch, no training code).
# The model repository is copied from models/; mount another one read-only over /app/models (or
# anywhere, with OOD_MODEL_DIR pointing at it). See docs/deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- build stage (CPU): a virtual environment with the serving dependencies ----------------------
FROM ${PYTHON_IMAGE} AS build-cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the serving package needs (the build tolerates the absent README.md).
COPY pyproject.toml ./
COPY service/ service/
# hadolint ignore=DL3013
RUN pip install ".[cpu]" \
 && python -c "import service, onnxruntime; import importlib.util as u; assert u.find_spec('torch') is None"

# ---- build stage (GPU): same, on the CUDA base, onnxruntime-gpu instead of onnxruntime -----------
FROM ${CUDA_IMAGE} AS build-gpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY service/ service/
# The `gpu` extra brings onnxruntime-gpu and never the CPU onnxruntime (both ship the same module).
# hadolint ignore=DL3013
RUN pip install ".[gpu]" \
 && python -c "import service, onnxruntime; import importlib.util as u; assert u.find_spec('torch') is None"

# ---- runtime (GPU) ------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ood \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ood
COPY --from=build-gpu /opt/venv /opt/venv
COPY models/ /app/models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OOD_HOST=0.0.0.0 \
    OOD_PORT=8000 \
    OOD_MODEL_DIR=/app/models \
    OOD_PROVIDERS='["CUDAExecutionProvider","CPUExecutionProvider"]'
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('OOD_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["python", "-m", "service"]

# ---- runtime (CPU, the default target) -----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
RUN groupadd --system --gid 10001 ood \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ood
COPY --from=build-cpu /opt/venv /opt/venv
# Root-owned and read-only to the service user: the model repository is data, not state.
COPY models/ /app/models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OOD_HOST=0.0.0.0 \
    OOD_PORT=8000 \
    OOD_MODEL_DIR=/app/models \
    OOD_PROVIDERS='["CPUExecutionProvider"]'
WORKDIR /app
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000
# Ready, not just alive: /readyz answers 503 until every model is loaded and warmed up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('OOD_PORT', '8000'), timeout=2)"]
# Exec form: the server is PID 1 and receives SIGTERM directly, then drains (OOD_GRACEFUL_SHUTDOWN_S).
ENTRYPOINT ["python", "-m", "service"]
