#!/usr/bin/env bash
# One registration, one job: asks GitHub for a just-in-time runner configuration (or, for
# runners without JIT support, a registration token for an ephemeral runner), runs a single
# job in a fresh work directory, and exits. systemd starts it again for the next job.
set -euo pipefail

CONF_DIR="${HARTLM_RUNNER_CONF:-/etc/hartlm-runner}"
# shellcheck source=/dev/null
. "$CONF_DIR/runner.env"
: "${REPO:?} ${LABELS:?} ${NAME_PREFIX:?} ${RUNNER_BIN:?}"
API="${GITHUB_API_URL:-https://api.github.com}"
token="$(cat "$CONF_DIR/token")"

api() {
    curl -fsS --retry 3 --max-time 60 -X POST \
        -H "Authorization: Bearer $token" \
        -H "Accept: application/vnd.github+json" \
        -H "X-GitHub-Api-Version: 2022-11-28" \
        "$API/repos/$REPO/actions/runners/$1" "${@:2}"
}

name="$NAME_PREFIX-$(date +%Y%m%d%H%M%S)-$$"
work="${STATE_DIRECTORY:-/var/lib/hartlm-runner}/job"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

if "$RUNNER_BIN" run --help 2>&1 | grep -q -- '--jitconfig'; then
    body="$(jq -cn --arg name "$name" --arg labels "$LABELS" \
        '{name: $name, runner_group_id: 1, work_folder: "_work", labels: ($labels | split(","))}')"
    jit="$(api generate-jitconfig -d "$body" | jq -er .encoded_jit_config)"
    exec "$RUNNER_BIN" run --jitconfig "$jit"
fi
reg="$(api registration-token | jq -er .token)"
"$RUNNER_BIN" configure --unattended --ephemeral --url "https://github.com/$REPO" \
    --token "$reg" --name "$name" --labels "$LABELS"
exec "$RUNNER_BIN" run --once
