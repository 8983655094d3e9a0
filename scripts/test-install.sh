#!/usr/bin/env bash
# Prove a real install: the repository's files (git ls-files: no .venv, no models/) copied to a
# temporary directory, a fresh venv, a NON-editable `pip install COPY[demo]` (the demo extra: the
# sample photos `models prepare` checks converted models on), then, from a working directory
# outside the copy and with no EDGE_* settings:
#   edge-daemon models prepare        into the user cache, $XDG_CACHE_HOME/edge-daemon/models
#   edge-daemon gallery build ../shared/data/video/hamilton/gallery --out G
#   edge-daemon recognize PHOTO --gallery G --json   on group photos that are not in the gallery,
#                                      which must name exactly the enrolled people in them
# The converted models must land in the user cache, never inside the installed package.
#
#   scripts/test-install.sh PYTHON     e.g. scripts/test-install.sh python3.13
#
# scripts/test-py313.sh runs it with CPython 3.13. The models' downloaded sources (pip's yuface
# wheel where yuface is not installed, npm's MobileFaceNet) are kept between runs in $EDGE_SOURCES
# (default ${XDG_CACHE_HOME:-~/.cache}/edge-daemon/sources) and seeded from the checkout's
# models/sources/ the first time, so after one run (or one scripts/setup.sh) it needs no npm and no
# download from PyPI for the models; pip installs from its own cache. Skips with the reason (exit
# 0) where the shared data (../shared beside the repository, or $EDGE_SHARED) is missing or this is
# not a git checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd -P)"
START=$(date +%s)
log() { printf '[test-install +%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
skip() { log "SKIP: $*"; echo "test-install: SKIPPED: $*"; exit 0; }
die() { log "FAIL: $*"; echo "test-install: FAIL: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/test-install.sh PYTHON"
PY="$(command -v "$1" || true)"
{ [ -n "$PY" ] && "$PY" -c 'import sys' 2>/dev/null; } || die "$1 is not a runnable Python"
SHARED="${EDGE_SHARED:-$REPO/../shared}"
GALLERY_PHOTOS="$SHARED/data/video/hamilton/gallery"
# photos of enrolled people that are not in the gallery, and who must be named in each
declare -A EXPECTED=(
    [obama_and_biden.jpg]="biden obama"
    [kit_with_rose.jpg]="kit_harington rose_leslie"
)
[ -d "$GALLERY_PHOTOS" ] || skip "shared data not found: $GALLERY_PHOTOS (expected ../shared beside the repository, or EDGE_SHARED)"
for photo in "${!EXPECTED[@]}"; do
    [ -f "$SHARED/data/photos/group/$photo" ] || skip "shared data not found: $SHARED/data/photos/group/$photo"
done
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || skip "$REPO is not a git checkout (the copy is made of git ls-files)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/edge-daemon-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
COPY="$WORK/edge-daemon"
RUN="$WORK/run"  # the working directory of every command: outside the copy
USER_CACHE="$WORK/cache"  # XDG_CACHE_HOME of the edge-daemon commands only (pip keeps its own cache)
mkdir -p "$COPY" "$RUN" "$USER_CACHE"

# tracked and new (not ignored) files that exist, without the checkout's models/
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [ -f "$file" ] && case "$file" in models/*) ;; *) printf '%s\0' "$file";; esac; done \
    | tar --null -T - -cf - | tar -xf - -C "$COPY"
log "copy: $(find "$COPY" -type f | wc -l) files in $COPY"

t0=$(date +%s)
"$PY" -m venv "$WORK/venv"
log "install: pip install '$COPY[demo]' (non-editable) on $("$PY" --version)"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$COPY[demo]" >"$WORK/pip.log" 2>&1 \
    || die "pip install failed: $(grep -m1 '^ERROR' "$WORK/pip.log" || tail -3 "$WORK/pip.log")"
rm -rf "$COPY"  # the install must not need its source
log "install: done in $(($(date +%s) - t0)) s"

ED="$WORK/venv/bin/edge-daemon"
# the defaults, as a user who just installed it sees them: no EDGE_* settings, no systemd directory
unset_env=(-u CACHE_DIRECTORY)
for name in $(compgen -e); do case "$name" in EDGE_*) unset_env+=(-u "$name");; esac; done
in_run() { (cd "$RUN" && env "${unset_env[@]}" "XDG_CACHE_HOME=$USER_CACHE" "$@"); }

package="$(in_run "$WORK/venv/bin/python" -c 'import edge_daemon.models.files as f; print(f.MANIFEST_FILE.parent, f.CHECKOUT_MODELS, f.default_directories()[0], sep="\n")')"
{ read -r package_dir; read -r checkout; read -r first_directory; } <<<"$package"
case "$package_dir" in "$WORK/venv/"*) ;; *) die "edge_daemon was imported from $package_dir, not from the venv";; esac
[ -f "$package_dir/manifest.json" ] || die "the installed package has no manifest.json (package data)"
[ "$checkout" = None ] || die "an installed package is taken for a checkout ($checkout)"
MODELS="$USER_CACHE/edge-daemon/models"
[ "$first_directory" = "$MODELS" ] || die "models prepare would write to $first_directory, not the user cache $MODELS"

SOURCES="${EDGE_SOURCES:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-daemon/sources}"
add_missing_sources() {  # FROM TO: each model's sources/<model>/ that TO does not have yet
    local folder
    for folder in "$1"/*/; do
        [ -d "$folder" ] && [ ! -e "$2/$(basename "$folder")" ] && cp -a "$folder" "$2/"
    done
    return 0
}
mkdir -p "$SOURCES" "$MODELS/sources"
add_missing_sources models/sources "$SOURCES"
add_missing_sources "$SOURCES" "$MODELS/sources"
t0=$(date +%s)
log "models: edge-daemon models prepare (sources at hand: $(cd "$MODELS/sources" && ls | tr '\n' ' '))"
in_run "$ED" models prepare >"$WORK/prepare.out" 2>"$WORK/prepare.err" \
    || die "models prepare failed: $(tail -3 "$WORK/prepare.err")"
add_missing_sources "$MODELS/sources" "$SOURCES"  # what was fetched, for the next run
checks="$("$WORK/venv/bin/python" - "$WORK/prepare.out" "$MODELS" <<'EOF'
import json, sys
from pathlib import Path
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
bad = [row["model"] for row in rows if not (row["check"].get("passed") and Path(row["file"]).parent == Path(sys.argv[2]))]
print(("BAD " if bad or len(rows) != 4 else "") + ", ".join(f"{row['model']} {row['precision']} ({row['check'].get('reference', '').split(' (')[0]})" for row in rows))
EOF
)"
case "$checks" in BAD*) die "models prepare did not convert and pass every model into $MODELS: $checks";; esac
log "models: converted and checked in $MODELS in $(($(date +%s) - t0)) s: $checks"
inside="$(find "$package_dir" -type f ! -name '*.py' ! -name '*.pyc' ! -name manifest.json ! -path '*/models/int8/*.ranges.json' | head -3)"
[ -z "$inside" ] || die "files other than the code, the manifest and the int8 ranges are inside the installed package: $inside"
[ -n "$(find "$package_dir" -path '*/models/int8/*.ranges.json')" ] || die "the int8 ranges are not installed with the package"

t0=$(date +%s)
log "gallery: edge-daemon gallery build $GALLERY_PHOTOS --out G"
in_run "$ED" gallery build "$GALLERY_PHOTOS" --out G >"$WORK/gallery.out" 2>"$WORK/gallery.err" \
    || die "gallery build failed: $(tail -3 "$WORK/gallery.err")"
built="$("$WORK/venv/bin/python" -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["identities"], "identities,", s["embeddings"], "embeddings,", len(s["skipped"]), "photos skipped")' "$WORK/gallery.out")"
log "gallery: built in $(($(date +%s) - t0)) s: $built"

t0=$(date +%s)
photos=()
for photo in "${!EXPECTED[@]}"; do photos+=("$SHARED/data/photos/group/$photo"); done
log "recognize: edge-daemon recognize ${!EXPECTED[*]} --gallery G --json"
in_run "$ED" recognize "${photos[@]}" --gallery G --json >"$WORK/recognize.out" 2>"$WORK/recognize.err" \
    || die "recognize failed: $(tail -3 "$WORK/recognize.err")"
expected_json="$(for photo in "${!EXPECTED[@]}"; do printf '%s\t%s\n' "$photo" "${EXPECTED[$photo]}"; done)"
verdict="$("$WORK/venv/bin/python" - "$WORK/recognize.out" "$expected_json" <<'EOF'
import json, sys
from pathlib import Path
expected = dict(line.split("\t") for line in sys.argv[2].splitlines())
ok, parts = True, []
for line in open(sys.argv[1]):
    row = json.loads(line)
    names = sorted(face["identity"] for face in row.get("faces", []) if face["identity"])
    wanted = sorted(expected[Path(row["image"]).name].split())
    ok &= names == wanted
    parts.append(f"{Path(row['image']).name}: {names} of {len(row.get('faces', []))} faces (expected {wanted})")
ok &= len(parts) == len(expected)
print(("ok: " if ok else "BAD: ") + "; ".join(parts))
EOF
)"
log "recognize: $verdict ($(($(date +%s) - t0)) s)"
case "$verdict" in ok*) ;; *) die "recognize did not name the enrolled people: $verdict";; esac
echo "test-install: PASS: non-editable install, models prepare into the user cache, gallery build and recognize on $("$PY" --version) ($(($(date +%s) - START)) s)"
