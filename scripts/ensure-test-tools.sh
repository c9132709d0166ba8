#!/usr/bin/env bash
# Makes sure the tools the tests drive are installed, installing only what
# is missing: with pip, the moto AWS emulator (tests start and stop the
# server themselves) and cfn-lint (lints the synthesized template); with
# apt, qemu-user-static, which runs the arm64 (Lambda) build's tests on an
# amd64 machine.
set -euo pipefail
MOTO_VERSION=5.2.1
CFN_LINT_VERSION=1.51.0
if ! command -v moto_server >/dev/null 2>&1 && ! python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
  echo "moto_server not found: installing moto[server]==${MOTO_VERSION}" >&2
  python3 -m pip install --quiet "moto[server]==${MOTO_VERSION}"
fi
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "cfn-lint not found: installing cfn-lint==${CFN_LINT_VERSION}" >&2
  python3 -m pip install --quiet "cfn-lint==${CFN_LINT_VERSION}"
fi
if [ "$(go env GOARCH)" != arm64 ] && ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && $sudo true 2>/dev/null; then
    echo "qemu-aarch64-static not found: installing qemu-user-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q --no-install-recommends qemu-user-static >/dev/null ||
      { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends qemu-user-static >/dev/null; }
  else
    echo "qemu-aarch64-static not found and apt-get unavailable: the arm64 tests will not run (install qemu-user-static)" >&2
  fi
fi
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
python3 -c 'import moto.server' || { echo "moto is not importable after install" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "node is required by the CDK (jsii runtime); install Node 20+" >&2; exit 1; }
