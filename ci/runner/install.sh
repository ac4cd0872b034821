#!/usr/bin/env bash
# Registers a Debian/Ubuntu riscv64 board as an ephemeral GitHub Actions runner for hartlm's
# release smoke tests. Run as root from an unpacked hartlm release (README, "Registering a board").
#
#   ci/runner/install.sh --repo OWNER/NAME --hartlm /opt/hartlm [--name PREFIX] [--runner-bin PATH]
#
# The runner is github-act-runner (Go; the official .NET runner has no riscv64 build). Each job
# gets a fresh just-in-time (or, with runners that lack JIT, ephemeral) registration, so a job can
# never inherit another job's registration or work directory. Labels come from `hartlm cpu
# --runner-labels` on this board.
set -euo pipefail

RUNNER_VERSION="v0.13.0" # build-runner.sh pins its commit
RUNNER_USER="hartlm-runner"
# HARTLM_RUNNER_ROOT installs into a throwaway root instead of / (with --dry-run: apt, useradd
# and systemctl are printed, not run; everything else, the runner's build included, happens
# inside the root; the kit's tests use it).
ROOT="${HARTLM_RUNNER_ROOT:-}"
CONF_DIR="$ROOT/etc/hartlm-runner"
LIB_DIR="$ROOT/usr/local/lib/hartlm-runner"
UNIT_DIR="$ROOT/etc/systemd/system"

die() {
    echo "install.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '5p' "$0" >&2
    exit 2
}

repo="" hartlm="" name="$(hostname -s)" runner_bin="" dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --repo) repo="${2:-}"; shift 2 ;;
        --hartlm) hartlm="${2:-}"; shift 2 ;;
        --name) name="${2:-}"; shift 2 ;;
        --runner-bin) runner_bin="${2:-}"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

$dry_run || [ "$(id -u)" -eq 0 ] || die "run as root"
if $dry_run && [ -z "$ROOT" ]; then
    die "--dry-run needs HARTLM_RUNNER_ROOT (a throwaway directory to install into)"
fi
# In a dry run, commands that change the system are printed instead.
run() {
    if $dry_run; then echo "install.sh: dry run: $*"; else "$@"; fi
}
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "--repo OWNER/NAME is required"
[ -x "$hartlm/bin/hartlm" ] || die "--hartlm must be an unpacked hartlm release (no $hartlm/bin/hartlm)"
[ "$(uname -m)" = riscv64 ] || echo "install.sh: warning: this is $(uname -m), not riscv64" >&2

# Labels first: a board hartlm cannot run on must not be registered at all.
labels="$("$hartlm/bin/hartlm" cpu --runner-labels)" || die "hartlm cpu --runner-labels failed on this board"
echo "install.sh: labels: $labels"

export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
# node runs the JavaScript actions (checkout, download-artifact); jq reads the API's answers.
run apt-get install -y -qq curl jq git nodejs ca-certificates

if ! id "$RUNNER_USER" >/dev/null 2>&1; then
    run useradd --system --create-home --home-dir "/var/lib/$RUNNER_USER" --shell /usr/sbin/nologin "$RUNNER_USER"
fi

install -d -m 0755 "$LIB_DIR"
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "$runner_bin" ]; then
    # From source at the pinned commit (build-runner.sh verifies it); a dry run builds too, into
    # the throwaway root, with whatever git and go are on PATH.
    runner_bin="$LIB_DIR/github-act-runner"
    if $dry_run; then export HARTLM_RUNNER_DRY_RUN=1; fi
    "$here/build-runner.sh" "$runner_bin" || die "building github-act-runner failed"
fi
[ -x "$runner_bin" ] || die "runner binary $runner_bin is not executable"
"$runner_bin" run --help 2>&1 | grep -q -- '--jitconfig' ||
    die "$runner_bin has no --jitconfig: one-job registrations need github-act-runner $RUNNER_VERSION or newer"

install -m 0755 "$here/run-once.sh" "$LIB_DIR/run-once.sh"
install -m 0755 "$here/register.sh" "$LIB_DIR/register.sh"
install -d -m 0755 "$UNIT_DIR"
install -m 0644 "$here/hartlm-runner.service" "$UNIT_DIR/hartlm-runner.service"
if [ "$runner_bin" != "$LIB_DIR/github-act-runner" ]; then
    install -m 0755 "$runner_bin" "$LIB_DIR/github-act-runner"
fi

# The configuration is root's alone: register.sh reads it as root before each job, and the job
# (the runner user) never sees the token. Values are quoted with %q, so sourcing runs nothing.
install -d -m 0700 "$CONF_DIR"
umask 077
tmp="$(mktemp "$CONF_DIR/.runner.env.XXXXXX")"
{
    printf 'REPO=%q\n' "$repo"
    printf 'LABELS=%q\n' "$labels"
    printf 'NAME_PREFIX=%q\n' "$name"
} >"$tmp"
chmod 0600 "$tmp"
mv "$tmp" "$CONF_DIR/runner.env"

# Earlier kits left the token readable by the runner's group: take it back.
if [ -e "$CONF_DIR/token" ]; then
    chmod 0600 "$CONF_DIR/token"
    if [ "$(id -u)" -eq 0 ]; then chown root:root "$CONF_DIR" "$CONF_DIR/token"; fi
fi
if [ ! -s "$CONF_DIR/token" ]; then
    echo "install.sh: paste a fine-grained token for $repo with 'Administration: read and write'"
    echo "install.sh: (it only creates one-job runner registrations), then press Enter:"
    IFS= read -r -s token
    [ -n "$token" ] || die "no token given"
    tmp="$(mktemp "$CONF_DIR/.token.XXXXXX")"
    printf '%s\n' "$token" >"$tmp"
    chmod 0600 "$tmp"
    mv "$tmp" "$CONF_DIR/token"
fi

run systemctl daemon-reload
run systemctl enable --now hartlm-runner.service
echo "install.sh: hartlm-runner.service is running; set the repository variable HARTLM_HARDWARE_SMOKE=true"
