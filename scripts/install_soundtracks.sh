#!/usr/bin/env bash
# Install the game soundtracks that `moodmusic corpus real` cuts its real-music set from (about 2.7 GB of
# Debian packages; 0ad-data is most of it). Not needed to serve or to test: only to build that set.
# wesnoth-1.16-music is deliberately absent: it is held back for an independent check.
set -euo pipefail
PACKAGES=(flare-game supertux-data hedgewars-data freedroidrpg-data megaglest-data widelands-data warzone2100-music 0ad-data)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_soundtracks: installing ${missing[*]} with apt-get"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install_soundtracks: ready; build the set with: .venv/bin/moodmusic corpus real --out data/real"
