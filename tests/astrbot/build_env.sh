#!/usr/bin/env bash
# Build (or reuse) the AstrBot virtualenv for the end-to-end suite, outside the repository.
# The venv lives in ${ASTRBOT_CACHE_DIR:-/work/cache}/astrbot-<sha256 of requirements.txt>, so a
# changed pin builds a new one; the path is printed on stdout (tests read ASTRBOT_VENV or find it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/requirements.txt"
sha="$(sha256sum "$req" | cut -c1-16)"
cache="${ASTRBOT_CACHE_DIR:-/work/cache}"
venv="$cache/astrbot-$sha"
if [ -f "$venv/.installed" ]; then
  echo "$venv"
  exit 0
fi
py="${ASTRBOT_PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in "$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.12.1/bin/python3.12" python3.12; do
    if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
  done
fi
[ -n "$py" ] || { echo "build_env.sh: no Python 3.12 found (set ASTRBOT_PYTHON)" >&2; exit 1; }
mkdir -p "$cache"
# Built in place (a venv cannot be moved: its scripts name it); `.installed` marks it complete, so
# an interrupted build is redone from scratch next time.
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
touch "$venv/.installed"
echo "$venv"
