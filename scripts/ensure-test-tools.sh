#!/usr/bin/env bash
# Makes sure the tools the tests drive are installed, installing only what
# is missing: the moto AWS emulator (tests start and stop the server
# themselves) and cfn-lint (lints the synthesized template), pinned, with
# pip; with apt, qemu-user-static, which runs the arm64 (Lambda) build's
# tests on an amd64 machine.
#
# A moto_server or cfn-lint already on PATH is used as it is. What is
# missing goes into a virtual environment of this project, .tools/venv
# (git-ignored), never into the system Python: Debian 12, Ubuntu 23.04 and
# later refuse `pip install` there (externally-managed-environment, PEP
# 668). The tests find the tools in .tools/venv/bin without it being on
# PATH (pkg/moto.Tool).
set -euo pipefail
MOTO_VERSION=5.2.1
CFN_LINT_VERSION=1.51.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.tools/venv"

# can_sudo sets sudo to what runs a command as root: nothing, "sudo -n", or
# fails.
can_sudo() {
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  $sudo true 2>/dev/null
}

# apt_install installs Debian packages as root (can_sudo first), updating
# the package lists once if the first try fails.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

# make_venv creates the virtual environment. On Debian and Ubuntu, venv
# (ensurepip) is a separate package, python3-venv: installed with apt when
# possible.
make_venv() {
  if python3 -m venv "$venv" >/dev/null 2>&1; then return 0; fi
  rm -rf "$venv"
  if command -v apt-get >/dev/null 2>&1 && can_sudo; then
    echo "python3 -m venv failed: installing python3-venv with apt-get" >&2
    apt_install python3-venv || true
    if python3 -m venv "$venv" >/dev/null 2>&1; then return 0; fi
    rm -rf "$venv"
  fi
  echo "python3 -m venv $venv failed: install Python's venv module (on Debian/Ubuntu: apt-get install python3-venv) and run make tools again" >&2
  exit 1
}

# Each tool missing from PATH: its command and the pinned requirement that
# provides it. Missing ones are installed together, so that pip resolves
# them as one.
names=() requirements=()
if ! command -v moto_server >/dev/null 2>&1 && ! python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
  names+=(moto_server) requirements+=("moto[server]==${MOTO_VERSION}")
fi
if ! command -v cfn-lint >/dev/null 2>&1; then
  names+=(cfn-lint) requirements+=("cfn-lint==${CFN_LINT_VERSION}")
fi
# installed.txt records what the virtual environment was given, so that a
# pin bumped here is installed again.
installed="$venv/installed.txt"
install_names=() install=()
for i in ${names[@]+"${!names[@]}"}; do
  if [ -x "$venv/bin/${names[$i]}" ] && grep -qxF "${requirements[$i]}" "$installed" 2>/dev/null; then continue; fi
  install_names+=("${names[$i]}") install+=("${requirements[$i]}")
done
if [ ${#install[@]} -gt 0 ]; then
  echo "${install_names[*]} not on PATH: installing ${install[*]} into .tools/venv, a virtual environment of this project (never into the system Python, which Debian 12 and Ubuntu 23.04+ refuse to pip install into)" >&2
  command -v python3 >/dev/null 2>&1 || { echo "python3 not found: install Python 3 (with its venv module) and run make tools again" >&2; exit 1; }
  [ -x "$venv/bin/python" ] || make_venv
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${install[@]}" ||
    { echo "pip install into .tools/venv failed (see above); to start afresh: rm -rf .tools/venv && make tools" >&2; exit 1; }
  printf '%s\n' "${install[@]}" >>"$installed"
fi
for name in ${names[@]+"${names[@]}"}; do
  [ -x "$venv/bin/$name" ] || { echo "$name is not in .tools/venv/bin after installing it" >&2; exit 1; }
done

if [ "$(go env GOARCH)" != arm64 ] && ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && can_sudo; then
    echo "qemu-aarch64-static not found: installing qemu-user-static" >&2
    apt_install qemu-user-static
  else
    echo "qemu-aarch64-static not found and apt-get unavailable: the arm64 tests will not run (install qemu-user-static)" >&2
  fi
fi
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
command -v node >/dev/null 2>&1 || { echo "node is required by the CDK (jsii runtime); install Node 20+" >&2; exit 1; }
