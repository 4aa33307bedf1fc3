#!/usr/bin/env bash
# Installs a WebGPU-capable software Vulkan driver (Mesa lavapipe >= 24) when no WebGPU adapter is found.
# Dawn rejects Mesa 22 (Debian bookworm main), so on bookworm the driver comes from bookworm-backports.
# Idempotent: does nothing when an adapter already exists or the driver is already installed.
set -euo pipefail

have_lavapipe_24() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24
}

if have_lavapipe_24; then
  echo "setup-software-gpu: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

if [ -e /dev/dri/renderD128 ] || command -v nvidia-smi >/dev/null 2>&1; then
  echo "setup-software-gpu: a hardware GPU seems present; installing lavapipe anyway as a fallback"
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if ! have_lavapipe_24; then
  echo "setup-software-gpu: mesa-vulkan-drivers >= 24 could not be installed (got '$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null)')" >&2
  exit 1
fi
echo "setup-software-gpu: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
