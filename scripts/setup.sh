#!/usr/bin/env bash
# Set up a fresh machine: `scripts/setup.sh serve` (serving only: no torch) or
# `scripts/setup.sh dev` (training, tests, benchmarks: everything the test command needs).
#
# dev installs, when missing, the Debian packages the tests use (Prometheus + promtool,
# Alertmanager, docker-compose for `docker-compose config`, and the benchmark data through
# scripts/fetch_data.sh), then a virtual environment in .venv with the project and its extras.
# Both modes install python3-venv when the interpreter cannot create a virtual environment (a
# fresh Debian/Ubuntu ships `venv` without `ensurepip`); serve installs no other package.
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

# The Debian package that gives "$python" ensurepip: python3-venv for the system python3,
# pythonX.Y-venv for another version.
venv_package() {
  local version default
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  default="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
  if [[ "$version" == "$default" ]]; then echo python3-venv; else echo "python${version}-venv"; fi
}

# `python3 -m venv` without ensurepip fails after creating .venv/bin/python, so a .venv without
# pip is a leftover of such a run: create it again (--clear) instead of trusting it.
if ! { [[ -x .venv/bin/python ]] && .venv/bin/python -m pip --version >/dev/null 2>&1; }; then
  if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    command -v apt-get >/dev/null || {
      echo "setup: $python cannot create a virtual environment (no ensurepip); install its" \
        "venv support and run again" >&2
      exit 1
    }
    apt_install "$(venv_package)"
  fi
  "$python" -m venv --clear .venv
fi
echo "setup: installing the project into .venv (${mode})"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
