#!/usr/bin/env bash
# One job: runs as the unprivileged runner user with the just-in-time configuration register.sh
# left for it (a one-job registration; the repository token stays with root), in a fresh work
# directory, then exits. systemd registers and starts the next one.
set -euo pipefail

ROOT="${HARTLM_RUNNER_ROOT:-}"
IN_DIR="${RUNTIME_DIRECTORY:-$ROOT/run/hartlm-runner}"
RUNNER_BIN="${HARTLM_RUNNER_BIN:-$ROOT/usr/local/lib/hartlm-runner/github-act-runner}"

jit="$(cat "$IN_DIR/jitconfig")"
rm -f "$IN_DIR/jitconfig"
work="${STATE_DIRECTORY:-$ROOT/var/lib/hartlm-runner}/job"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# The one-job configuration is the runner's only input: github-act-runner takes it as an argument.
exec "$RUNNER_BIN" run --jitconfig "$jit"
