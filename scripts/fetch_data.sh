#!/usr/bin/env bash
# Fetch the inputs of the Fashion-MNIST OOD benchmark (`make data`).
#
# Every input is a Debian package. If a package's files are already installed under /usr/share,
# nothing is fetched for it; otherwise the package is downloaded with `apt-get download` (no root
# needed) and unpacked with `dpkg -x` into the data root, where training/data/paths.py looks first:
#
#   ${OOD_DATA_ROOT:-<repo>/.data}/usr/share/...
#
# Safe to run again: packages already present are skipped, and .deb files are kept in
# <data root>/debs. Use --force to unpack into the data root even when the system has the files.
#
# Not on Debian? See docs/data.md for where to get the same files.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_root="${OOD_DATA_ROOT:-${repo_root}/.data}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

# package -> one file that proves the package is unpacked (path relative to /)
declare -A marker=(
  [dataset-fashion-mnist]="usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  [opencv-doc]="usr/share/doc/opencv-doc/examples/data/digits.png"
  [fonts-dejavu-core]="usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
  [fonts-liberation]="usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"
  [fonts-freefont-ttf]="usr/share/fonts/truetype/freefont/FreeSans.ttf"
)
packages=(dataset-fashion-mnist opencv-doc fonts-dejavu-core fonts-liberation fonts-freefont-ttf)

missing=()
for pkg in "${packages[@]}"; do
  file="${marker[$pkg]}"
  if [[ -f "${data_root}/${file}" ]]; then
    echo "ok      ${pkg}: ${data_root}/${file}"
  elif [[ ${force} -eq 0 && -f "/${file}" ]]; then
    echo "ok      ${pkg}: /${file} (installed on this system)"
  else
    missing+=("${pkg}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "all data present (data root: ${data_root})"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "error: missing ${missing[*]} and no apt-get/dpkg here; see docs/data.md" >&2
  exit 1
fi

debs="${data_root}/debs"
mkdir -p "${debs}"
for pkg in "${missing[@]}"; do
  echo "fetch   ${pkg}"
  # apt-get download writes <pkg>_<version>_<arch>.deb into the current directory.
  if ! (cd "${debs}" && apt-get download "${pkg}"); then
    echo "error: apt-get download ${pkg} failed; run 'sudo apt-get update' and retry" >&2
    exit 1
  fi
  deb="$(ls -t "${debs}/${pkg}"_*.deb | head -n 1)"
  dpkg -x "${deb}" "${data_root}"
  if [[ ! -f "${data_root}/${marker[$pkg]}" ]]; then
    echo "error: ${deb} did not contain ${marker[$pkg]}" >&2
    exit 1
  fi
  echo "ok      ${pkg}: ${data_root}/${marker[$pkg]}"
done
echo "all data present (data root: ${data_root})"
