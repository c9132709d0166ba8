#!/usr/bin/env bash
# Makes sure the moto AWS emulator is installed, installing it with pip only
# where it is missing. Tests start and stop the server themselves.
set -euo pipefail
MOTO_VERSION=5.2.1
if command -v moto_server >/dev/null 2>&1 || python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
  exit 0
fi
echo "moto_server not found: installing moto[server]==${MOTO_VERSION}" >&2
python3 -m pip install --quiet "moto[server]==${MOTO_VERSION}"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
python3 -c 'import moto.server' || { echo "moto install failed" >&2; exit 1; }
