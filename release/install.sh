#!/bin/sh
# Installs a hartlm release for this machine's architecture into ~/.local, after checking its
# sha256 against the release's SHA256SUMS. Nothing is left half-installed when a step fails.
#
#   curl -fsSL https://github.com/hartlm/hartlm/releases/latest/download/install.sh | sh
#   sh install.sh [--version vX.Y.Z|nightly] [--prefix DIR] [--repo OWNER/NAME]
#
# Environment: HARTLM_REPO (default hartlm/hartlm), HARTLM_API_URL (default
# https://api.github.com), HARTLM_PREFIX (default ~/.local).
set -eu

REPO="${HARTLM_REPO:-hartlm/hartlm}"
API="${HARTLM_API_URL:-https://api.github.com}"
PREFIX="${HARTLM_PREFIX:-${HOME:?HOME is not set}/.local}"
VERSION=""

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --version) [ $# -ge 2 ] || die "--version needs a value (vX.Y.Z or nightly)"; VERSION="$2"; shift 2 ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
        --repo) [ $# -ge 2 ] || die "--repo needs OWNER/NAME"; REPO="$2"; shift 2 ;;
        -h | --help) usage 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

case "$REPO" in
    */*) ;;
    *) die "--repo must be OWNER/NAME, not '$REPO'" ;;
esac
case "$VERSION" in
    *[!A-Za-z0-9._+-]*) die "--version '$VERSION' is not a release tag (vX.Y.Z or nightly)" ;;
esac

[ "$(uname -s)" = Linux ] || die "hartlm runs on Linux only, this is $(uname -s)"
case "$(uname -m)" in
    x86_64 | amd64) TRIPLE=x86_64-unknown-linux-gnu ;;
    riscv64) TRIPLE=riscv64gc-unknown-linux-gnu ;;
    *) die "there is no hartlm build for $(uname -m); releases exist for x86_64 and riscv64" ;;
esac

# The binaries link against glibc 2.34 or newer (Debian 12, Ubuntu 22.04 and later).
glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null || true)"
case "$glibc" in
    "glibc "*)
        v="${glibc#glibc }"
        major="${v%%.*}"
        minor="${v#*.}"
        minor="${minor%%.*}"
        if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 34 ]; }; then
            die "hartlm needs glibc 2.34 or newer; this system has $v (Debian 11 and Ubuntu 20.04 are too old)"
        fi
        ;;
    *) die "hartlm needs glibc 2.34 or newer; this system's C library is not glibc (getconf GNU_LIBC_VERSION: '${glibc:-none}')" ;;
esac

command -v curl >/dev/null 2>&1 || die "curl is needed to download the release; install it (apt-get install curl)"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "sha256sum (coreutils) is needed to verify the download"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hartlm-install.XXXXXX")" || die "cannot create a temporary directory"
staging=""
cleanup() {
    rm -rf "$tmp"
    if [ -n "$staging" ]; then rm -rf "$staging"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fetch() { # URL FILE
    curl -fsSL --retry 2 --proto '=http,https' -o "$2" "$1" 2>"$tmp/curl.err"
}

if [ -z "$VERSION" ]; then
    release_url="$API/repos/$REPO/releases/latest"
    what="the latest release of $REPO"
else
    release_url="$API/repos/$REPO/releases/tags/$VERSION"
    what="release $VERSION of $REPO"
fi
fetch "$release_url" "$tmp/release.json" ||
    die "cannot read $what from $API ($(tail -n1 "$tmp/curl.err")); check --version and your network"

# One JSON value per line, so the release's fields can be read without jq.
# shellcheck disable=SC2020 # each of the five characters becomes a line break
tr ',{}[]' '\n\n\n\n\n' <"$tmp/release.json" >"$tmp/release.lines"
field() { # NAME: the first string value of this field
    sed -n "s/^ *\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" "$tmp/release.lines" | head -n1
}
asset_url() { # NAME: the download URL of the asset with this name
    sed -n 's/^ *"browser_download_url" *: *"\([^"]*\)".*/\1/p' "$tmp/release.lines" | grep "/$1\$" | head -n1
}

tag="$(field tag_name)"
[ -n "$tag" ] || die "$what: the API's answer has no tag_name"
archive="hartlm-$TRIPLE.tar.gz"
archive_url="$(asset_url "$archive")"
sums_url="$(asset_url SHA256SUMS)"
[ -n "$archive_url" ] || die "release $tag has no $archive: nothing was installed (is $TRIPLE built in it?)"
[ -n "$sums_url" ] || die "release $tag has no SHA256SUMS to verify $archive against: nothing was installed"

say "downloading $archive from release $tag"
fetch "$archive_url" "$tmp/$archive" || die "downloading $archive failed ($(tail -n1 "$tmp/curl.err")): nothing was installed"
fetch "$sums_url" "$tmp/SHA256SUMS" || die "downloading SHA256SUMS failed ($(tail -n1 "$tmp/curl.err")): nothing was installed"
expected="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")"
[ -n "$expected" ] || die "SHA256SUMS of release $tag does not list $archive: nothing was installed"
actual="$(sha256 "$tmp/$archive")"
[ "$actual" = "$expected" ] ||
    die "checksum mismatch for $archive: SHA256SUMS says $expected, the download is $actual; nothing was installed"
say "verified sha256 $actual"

mkdir "$tmp/unpack"
tar -xzf "$tmp/$archive" -C "$tmp/unpack" || die "$archive does not unpack: nothing was installed"
top="$(ls "$tmp/unpack")"
case "$top" in
    "hartlm-"*"-$TRIPLE") ;;
    *) die "$archive does not hold one hartlm-<version>-$TRIPLE directory: nothing was installed" ;;
esac
version="${top#hartlm-}"
version="${version%-"$TRIPLE"}"
[ -x "$tmp/unpack/$top/bin/hartlm" ] || die "$archive has no bin/hartlm: nothing was installed"

# Into place: unpack beside the destination, then rename (atomic on one file system), so a
# reader of ~/.local/share/hartlm/<version> never sees a partial tree.
data="$PREFIX/share/hartlm"
dest="$data/$version"
mkdir -p "$data" "$PREFIX/bin" || die "cannot create $data and $PREFIX/bin"
staging="$(mktemp -d "$data/.$version.XXXXXX")" || die "cannot write into $data"
cp -R "$tmp/unpack/$top/." "$staging/" || die "copying into $data failed: nothing was installed"
if [ -e "$dest" ]; then
    old="$(mktemp -d "$data/.$version.old.XXXXXX")"
    mv "$dest" "$old/" || die "cannot replace $dest"
    mv "$staging" "$dest" || { mv "$old/$version" "$dest"; die "cannot move the new tree to $dest"; }
    rm -rf "$old"
else
    mv "$staging" "$dest" || die "cannot move the new tree to $dest"
fi
staging=""
chmod 0755 "$dest"

# A link is replaced atomically (a new link renamed over it); a file of someone else's is kept.
link() { # TARGET LINK
    if [ -e "$2" ] && [ ! -L "$2" ]; then
        say "warning: $2 exists and is not a link; left as it is"
        return 1
    fi
    mkdir -p "$(dirname "$2")"
    rm -f "$2.hartlm-new" # left by a run cut off between these two lines
    ln -s "$1" "$2.hartlm-new" && mv -f "$2.hartlm-new" "$2"
}
link "$dest/bin/hartlm" "$PREFIX/bin/hartlm" ||
    die "installed $dest, but $PREFIX/bin/hartlm is not a link this script made; remove it and run again"
for doc in "$dest"/share/man/man1/*.1 "$dest"/share/bash-completion/completions/hartlm \
    "$dest"/share/zsh/site-functions/_hartlm "$dest"/share/fish/vendor_completions.d/hartlm.fish; do
    if [ -f "$doc" ]; then link "$doc" "$PREFIX/${doc#"$dest"/}" || true; fi
done

say "installed hartlm $version ($TRIPLE) into $dest"
say "linked $PREFIX/bin/hartlm -> $dest/bin/hartlm, with the man page and completions under $PREFIX/share"
case ":${PATH:-}:" in
    *":$PREFIX/bin:"*) say "run: hartlm cpu" ;;
    *) say "$PREFIX/bin is not on your PATH: add it (export PATH=\"$PREFIX/bin:\$PATH\"), then run: hartlm cpu" ;;
esac
