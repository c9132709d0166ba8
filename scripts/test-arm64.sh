#!/usr/bin/env bash
# Runs, for linux/arm64 (the Lambda architecture), the tests of the packages
# with arm64 assembly (the envelope scanner's NEON masks) and of those whose
# results differ by architecture when a float64 is converted out of range
# (timestamps: MinInt64 on amd64, MaxInt64 on arm64): natively on an arm64
# host, under qemu-aarch64-static elsewhere. Under CI=true a missing qemu is
# a failure, never a skip.
set -euo pipefail
PKGS=(./pkg/smartcar ./pkg/receiver ./pkg/vehicle ./pkg/processor)
if [ "$(go env GOARCH)" = arm64 ]; then
  echo "arm64 host: these packages were tested natively by go test"
  exit 0
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "qemu-aarch64-static missing: the arm64 build (NEON scanner, timestamps) was NOT tested; install qemu-user-static" >&2
  [ "${CI:-}" != true ] || exit 1
  exit 0
fi
GOOS=linux GOARCH=arm64 go test -exec qemu-aarch64-static -count=1 "${PKGS[@]}"
