#!/usr/bin/env bash
# Set up a fresh machine: `scripts/setup.sh serve` (serving only: no torch) or
# `scripts/setup.sh dev` (training, tests, benchmarks: everything the test command needs).
#
# dev installs, when missing, the Debian packages the tests use (Prometheus + promtool,
# Alertmanager, docker-compose for `docker-compose config`, and the benchmark data through
# scripts/fetch_data.sh), then a virtual environment in .venv with the project and its extras.
# torch is pinned to 2.13.0 (the CPU wheel); an unpinned torch would pull a multi-GB CUDA build.
# Idempotent: a second run installs nothing new.
set -euo pipefail

mode="${1:-dev}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
python="${PYTHON:-python3}"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

case "$mode" in
  serve) extras="[cpu]" ;;
  dev)
    apt_install prometheus prometheus-alertmanager docker-compose wrk
    bash scripts/fetch_data.sh
    extras="[cpu,train,dev]"
    ;;
  *) echo "usage: $0 serve|dev" >&2; exit 2 ;;
esac

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
echo "setup: installing the project into .venv (${mode})"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
