#!/usr/bin/env bash
# Runs as root before each job (the unit's ExecStartPre=+): trades the repository token, which only
# root can read, for a one-job just-in-time runner configuration, and hands only that to the
# unprivileged runner user. The token never reaches a command line: curl reads its header from stdin.
set -euo pipefail

ROOT="${HARTLM_RUNNER_ROOT:-}"
CONF_DIR="$ROOT/etc/hartlm-runner"
OUT_DIR="${RUNTIME_DIRECTORY:-$ROOT/run/hartlm-runner}"
RUNNER_USER="${HARTLM_RUNNER_USER:-hartlm-runner}"

# runner.env: assignments install.sh quoted with printf %q, so sourcing it runs nothing.
# shellcheck source=/dev/null
. "$CONF_DIR/runner.env"
: "${REPO:?} ${LABELS:?} ${NAME_PREFIX:?}"
API="${GITHUB_API_URL:-https://api.github.com}"

token_file="$CONF_DIR/token"
[ -r "$token_file" ] || { echo "register.sh: $token_file is missing; rerun install.sh" >&2; exit 1; }
name="$NAME_PREFIX-$(date +%Y%m%d%H%M%S)-$$"
body="$(jq -cn --arg name "$name" --arg labels "$LABELS" \
    '{name: $name, runner_group_id: 1, work_folder: "_work", labels: ($labels | split(","))}')"
# curl's configuration from stdin: the Authorization header stays out of every process's argv.
jit="$({
    printf 'header = "Authorization: Bearer %s"\n' "$(tr -d '\n' <"$token_file")"
    printf 'header = "Accept: application/vnd.github+json"\n'
    printf 'header = "X-GitHub-Api-Version: 2022-11-28"\n'
} | curl -fsS --retry 3 --max-time 60 -X POST --config - \
    "$API/repos/$REPO/actions/runners/generate-jitconfig" -d "$body" | jq -er .encoded_jit_config)"

install -d -m 0700 "$OUT_DIR"
umask 077
tmp="$(mktemp "$OUT_DIR/.jitconfig.XXXXXX")"
printf '%s' "$jit" >"$tmp"
if [ -z "$ROOT" ]; then
    chown "$RUNNER_USER:" "$tmp" "$OUT_DIR"
fi
mv "$tmp" "$OUT_DIR/jitconfig"
