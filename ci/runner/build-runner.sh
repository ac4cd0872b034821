#!/usr/bin/env bash
# Builds github-act-runner from its source at a pinned commit, the way its module allows
# (`go install pkg@version` refuses modules with `replace` directives, which it has).
#
#   ci/runner/build-runner.sh OUT [GOARCH]
#
# The source is fetched by commit and the checkout verified against that hash; Go modules are
# verified against go.sum and the checksum database. Go comes from the first of: a `go` >= 1.21
# on PATH, the distribution's `golang-go` if >= 1.21 (Ubuntu 24.04: 1.22, Debian 13: 1.24), a
# versioned `golang-1.2x-go` (Debian 12: golang-1.23-go from bookworm-backports). That Go then
# fetches the toolchain the module names (GOTOOLCHAIN, verified by the checksum database).
set -euo pipefail

RUNNER_REPO="https://github.com/ChristopherHX/github-act-runner.git"
RUNNER_COMMIT="c934667526f602e5732e7072fcd53b36cf044e37" # v0.13.0
GO_TOOLCHAIN="go1.24.3"                                    # v0.13.0's go.mod `toolchain` line

die() {
    echo "build-runner.sh: $*" >&2
    exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: build-runner.sh OUT [GOARCH]"; fi
case "$1" in
    /*) out="$1" ;;
    *) out="$PWD/$1" ;;
esac
goarch="${2:-}"

# The major.minor of `go version` output ("go version go1.22.2 linux/riscv64" -> 1.22).
go_minor() {
    "$1" version 2>/dev/null | sed -n 's/^go version go1\.\([0-9]*\).*/\1/p'
}

find_go() {
    local go
    for go in "$(command -v go || true)" /usr/lib/go-1.2[1-9]/bin/go; do
        if [ -n "$go" ] && [ -x "$go" ] && [ "$(go_minor "$go")" -ge 21 ] 2>/dev/null; then
            echo "$go"
            return 0
        fi
    done
    return 1
}

go_bin="$(find_go || true)"
if [ -z "$go_bin" ]; then
    [ -z "${HARTLM_RUNNER_DRY_RUN:-}" ] || die "dry run: no go >= 1.21 on PATH (a real run installs one with apt)"
    [ "$(id -u)" -eq 0 ] || die "needs Go >= 1.21 to bootstrap; run as root to install it with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    candidate="$(apt-cache policy golang-go | sed -n 's/^ *Candidate: *\(2:\)\{0,1\}1\.\([0-9]*\).*/\2/p')"
    if [ -n "$candidate" ] && [ "$candidate" -ge 21 ]; then
        apt-get install -y -qq golang-go
    else
        pkg="$(apt-cache pkgnames golang-1. | grep -E '^golang-1\.(2[1-9])-go$' | sort -V | tail -n1 || true)"
        [ -n "$pkg" ] || die "no Go >= 1.21 in the apt sources; on Debian 12 add bookworm-backports \
(deb http://deb.debian.org/debian bookworm-backports main) and run again"
        apt-get install -y -qq "$pkg"
    fi
    go_bin="$(find_go)" || die "installed Go, but no go >= 1.21 was found"
fi
echo "build-runner.sh: bootstrapping with $("$go_bin" version)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$work" init -q src
git -C "$work/src" fetch -q --depth 1 "$RUNNER_REPO" "$RUNNER_COMMIT"
git -C "$work/src" checkout -q FETCH_HEAD
got="$(git -C "$work/src" rev-parse HEAD)"
[ "$got" = "$RUNNER_COMMIT" ] || die "fetched $got, not the pinned $RUNNER_COMMIT; refusing to build it"

mkdir -p "$(dirname "$out")"
(
    cd "$work/src"
    export GOTOOLCHAIN="$GO_TOOLCHAIN" GOFLAGS="-mod=readonly" GOPATH="$work/gopath" GOCACHE="$work/gocache"
    export CGO_ENABLED=0
    if [ -n "$goarch" ]; then export GOOS=linux GOARCH="$goarch"; fi
    "$go_bin" build -trimpath -o "$out.part" .
)
mv "$out.part" "$out"
echo "build-runner.sh: built $out from $RUNNER_COMMIT with $GO_TOOLCHAIN${goarch:+ for $goarch}"
