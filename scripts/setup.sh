#!/usr/bin/env bash
# Set up moodmusic on a fresh Debian machine: system packages, a virtual environment, the package.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# FluidSynth renders the training corpus; the three General MIDI soundfonts are FluidR3 (MIT, the
# default) and two others for cross-timbre tests. Chromium and its driver run the web page's
# end-to-end test headless (scripts/webpage_check.py, with selenium from the dev extras). PostgreSQL's server is
# the shared clip store's database in the tests (server/local_postgres.py starts a throwaway one).
APT_PACKAGES=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont chromium chromium-driver godot3-server postgresql)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the project's requirements changed since the last setup.
stamp=.venv/.moodmusic-setup
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing moodmusic and its requirements into .venv (torch takes about a minute)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev,scale]'  # the tests need the scale extras too (Ray Serve, psycopg)
  echo "$wanted" > "$stamp"
fi
echo "setup: ready (.venv/bin/moodmusic)"
