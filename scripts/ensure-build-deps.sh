#!/usr/bin/env bash
# Installs the Debian packages that building Ollama from source needs, those the stack
# installers' real tests use (cmake and make for a CMake build, python3-venv for a venv), and the
# browser the report's test opens its HTML in (chromium, with a font), when missing.
# Uses apt-get directly as root, or through sudo when available; otherwise says what to install.
set -euo pipefail

need=()
for pkg in nlohmann-json3-dev libstb-dev gcc g++ make cmake python3-venv chromium fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[[ ${#need[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-build-deps: missing packages ${need[*]} and no apt-get here; install them and retry" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "ensure-build-deps: need root to install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "== installing ${need[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${need[@]}"; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
