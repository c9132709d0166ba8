#!/usr/bin/env bash
# Runs the tests of the packages with arm64 assembly (the envelope scanner's
# NEON masks) for linux/arm64, the Lambda architecture: natively on an arm64
# host, under qemu-aarch64-static elsewhere. Under CI=true a missing qemu is
# a failure, never a skip.
set -euo pipefail
PKGS=(./pkg/smartcar ./pkg/receiver)
if [ "$(go env GOARCH)" = arm64 ]; then
  echo "arm64 host: the NEON code was tested natively by go test"
  exit 0
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "qemu-aarch64-static missing: the arm64 (NEON) scanner was NOT tested; install qemu-user-static" >&2
  [ "${CI:-}" != true ] || exit 1
  exit 0
fi
GOOS=linux GOARCH=arm64 go test -exec qemu-aarch64-static -count=1 "${PKGS[@]}"
