#!/usr/bin/env bash
# Create (once) and update (when pyproject.toml changes) the project's virtual environment in
# .venv, with Python 3.13. Sourced by ./mario-rl and ./run-tests; safe to run again.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"

find_python() {
  for candidate in python3.13 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "mario-rl: Python 3.13 is required but was not found on PATH (tried python3.13, python3, python)." >&2
  echo "Install it (e.g. 'pyenv install 3.13'), then run this command again." >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  python="$(cd "$repo" && find_python)"
  echo "mario-rl: creating $venv with $python" >&2
  "$python" -m venv "$venv"
fi

stamp="$venv/.install-stamp"
wanted="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "mario-rl: installing dependencies into $venv (first run takes a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$repo[dev,sb3,ray]"
  echo "$wanted" >"$stamp"
fi
