#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (`npm run test:browser`, driven by playwright-core with
# executablePath /usr/bin/chromium; WebGPU there runs on SwiftShader, so no GPU is needed).
# Idempotent: does nothing when /usr/bin/chromium exists; runs apt-get update only when the install needs it.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "setup-browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1) already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

install_chromium() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }
# Stale package lists name versions the mirror no longer has: refresh them and try once more.
if ! apt-cache show chromium >/dev/null 2>&1 || ! install_chromium; then
  $SUDO apt-get update -qq
  install_chromium
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "setup-browser: installing chromium did not provide /usr/bin/chromium" >&2
  exit 1
fi
echo "setup-browser: installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
