#!/usr/bin/env bash
# Build the container image from the Containerfile and prove it works, with Podman:
#
#   scripts/test-container.sh
#
# 1. Base image: debian:bookworm-slim from the local image store, else made here from Debian's
#    packages (debootstrap --variant=minbase, imported with podman import; the root filesystem's tar
#    is cached in $EDGE_CONTAINER_CACHE), so that no container registry is needed.
# 2. Build (podman build --layers --network host, with the host's CA bundle mounted for the build's
#    RUN steps only): the dependency layers stay cached while pyproject.toml is unchanged, so a
#    re-run after a code change rebuilds the project layer and prepares the models again only.
#    The image must run as a non-root user, hold no npm, node, compiler or test data, and accept
#    deploy/compose/config.toml (edge-daemon config check).
# 3. The image with no arguments and --read-only: the demo's events on stdout (grace_hopper and
#    eileen_collins recognised, one unknown, three ended) and every log line JSON.
# 4. With ../shared/data: a gallery built in the container from the Hamilton gallery photos, then the
#    daemon with a mounted /config/config.toml, the Hamilton clip (looped) and --read-only, publishing
#    to a Mosquitto on the host's loopback (--network host): lin_manuel_miranda's events arrive over
#    MQTT, the health check turns healthy, the daemon runs as uid 10001, the root filesystem refuses
#    writes; SIGTERM ends it with exit code 0, every track's 'ended' event delivered and nothing
#    left in the spool.
#
# Prints one line per check and a PASS/FAIL table; exits 1 on any failed check, 0 otherwise.
# Skips with the reason (exit 0, a SKIP line) where no container engine can run: no podman to be had
# from apt, or podman cannot start a container here. Step 4 skips without ../shared/data.
#
# Environment:
#   EDGE_CONTAINER_CACHE   cache root (default /var/cache/edge-daemon as root, else ~/.cache/edge-daemon)
#   EDGE_CONTAINER_MIRROR  Debian mirror for debootstrap (default: the bookworm mirror in /etc/apt)
#   EDGE_CONTAINER_IMAGE   the tag to build (default localhost/edge-daemon:test)
#   EDGE_CONTAINER_REBUILD=1  rebuild the base image and every layer from scratch
#   EDGE_SHARED            the shared data directory (default ../shared beside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd -P)"
START=$(date +%s)
SUITE=bookworm
BASE_IMAGE=docker.io/library/debian:bookworm-slim
IMAGE="${EDGE_CONTAINER_IMAGE:-localhost/edge-daemon:test}"
NAME="edge-daemon-test-$$"
APP_UID=10001

log() { printf '[test-container +%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { log "FAIL: $*"; echo "test-container: FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; echo "test-container: SKIP: $*"; exit 0; }
CHECKS=()
check() {  # check NAME PASS|FAIL DETAIL
    CHECKS+=("$(printf '%-4s  %-34s %s' "$2" "$1" "$3")")
    log "$2 $1: $3"
}
summarise() {
    local line failed=0
    echo "test-container: $(($(date +%s) - START)) s"
    for line in "${CHECKS[@]}"; do
        echo "  $line"
        case "$line" in FAIL*) failed=1;; esac
    done
    [ "$failed" = 0 ] && echo "test-container: PASS" || echo "test-container: FAIL"
    exit "$failed"
}

# --- the engine: podman, with runc and cgroupfs (crun and systemd cgroups fail on hybrid cgroups) ---
if [ -n "${EDGE_CONTAINER_CACHE:-}" ]; then
    CACHE="$EDGE_CONTAINER_CACHE"
elif [ "$(id -u)" -eq 0 ]; then
    CACHE=/var/cache/edge-daemon
else
    CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/edge-daemon"
fi
mkdir -p "$CACHE/container"
CACHE="$(cd "$CACHE" && pwd -P)"
case "$CACHE/" in "$REPO/"*) die "EDGE_CONTAINER_CACHE=$CACHE is inside the repository; put it outside";; esac
exec 9>"$CACHE/container.lock"
flock -n 9 || die "another test-container.sh holds $CACHE/container.lock"
WORK="$CACHE/container-run"
rm -rf --one-file-system "$WORK"
mkdir -p "$WORK"

if ! command -v podman >/dev/null; then
    [ "$(id -u)" -eq 0 ] || skip "no podman installed, and installing it from apt needs root"
    command -v apt-get >/dev/null || skip "no podman installed and no apt-get to install it"
    log "installing podman runc from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends podman runc >"$WORK/apt.log" 2>&1 \
        || { apt-get update -qq >>"$WORK/apt.log" 2>&1 && apt-get install -y -qq --no-install-recommends podman runc >>"$WORK/apt.log" 2>&1; } \
        || skip "cannot install podman runc from apt (log: $WORK/apt.log)"
fi
# The engine's settings for this script only (CONTAINERS_CONF), so that the host's stay as they are:
# the default ulimits and pids limit are refused by this kind of kernel, and events go to a file
# because there may be no journald.
export CONTAINERS_CONF="$CACHE/container/containers.conf"
{
    echo '[containers]'
    echo 'default_ulimits = []'
    echo 'pids_limit = 0'
    echo '[engine]'
    echo 'cgroup_manager = "cgroupfs"'
    echo 'events_logger = "file"'
    command -v runc >/dev/null && echo 'runtime = "runc"'
} >"$CONTAINERS_CONF"
podman info >"$WORK/podman-info.log" 2>&1 || skip "podman cannot run here: $(tail -1 "$WORK/podman-info.log")"
log "engine: $(podman --version), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null), storage $(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    podman rm -f -v -t 0 "$NAME" "$NAME-mqtt" >/dev/null 2>&1 || true  # -v: their anonymous /data volumes
    if [ -n "${BROKER_PID:-}" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the base image ------------------------------------------------------------------------------
ROOTFS_TAR="$CACHE/container/$SUITE-minbase.tar"
[ "${EDGE_CONTAINER_REBUILD:-0}" = 1 ] && { podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true; rm -f "$ROOTFS_TAR"; }
if podman image exists "$BASE_IMAGE"; then
    log "base image: $BASE_IMAGE from the local store"
else
    if [ ! -f "$ROOTFS_TAR" ]; then
        command -v debootstrap >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq debootstrap >"$WORK/apt-debootstrap.log" 2>&1; } \
            || skip "no $BASE_IMAGE in the local store and no debootstrap to make it (no registry is assumed)"
        [ "$(id -u)" -eq 0 ] || skip "no $BASE_IMAGE in the local store, and debootstrap needs root"
        MIRROR="${EDGE_CONTAINER_MIRROR:-$(python3 -c 'import sys; from scripts.arm64.apt_sources import apt_mirror; print(apt_mirror(sys.argv[1]))' "$SUITE")}"
        log "base image: debootstrap --variant=minbase $SUITE from $MIRROR"
        t0=$(date +%s)
        rootfs="$WORK/rootfs"
        debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
            || skip "debootstrap from $MIRROR failed: $(grep -m1 -E '^E:' "$WORK/debootstrap.log" || tail -1 "$WORK/debootstrap.log") (log: $WORK/debootstrap.log)"
        # as slim as Debian's own -slim image: no package caches, lists or documentation
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
            "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
        tar -C "$rootfs" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
        rm -rf --one-file-system "$rootfs"
        log "base image: root filesystem made in $(($(date +%s) - t0)) s, cached as $ROOTFS_TAR"
    fi
    podman import --change 'CMD ["bash"]' "$ROOTFS_TAR" "$BASE_IMAGE" >"$WORK/import.log" 2>&1 \
        || die "podman import of $ROOTFS_TAR failed: $(tail -1 "$WORK/import.log")"
    log "base image: imported as $BASE_IMAGE"
fi
podman run --rm --network none "$BASE_IMAGE" true >"$WORK/first-run.log" 2>&1 \
    || skip "podman cannot start a container here: $(tail -1 "$WORK/first-run.log")"

# --- 2. the build -----------------------------------------------------------------------------------
build_args=()
ca_file="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca_file" ]; then
    build_args+=(--volume "$ca_file:/run/build-host/ca-certificates.crt:ro" --build-arg BUILD_CA_FILE=/run/build-host/ca-certificates.crt)
fi
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_EXTRA_INDEX_URL NPM_CONFIG_REGISTRY; do
    [ -n "${!name:-}" ] && build_args+=(--build-arg "$name=${!name}")
done
case "${PIP_EXTRA_INDEX_URL:-}" in *file:*) die "PIP_EXTRA_INDEX_URL names a local path, which the build cannot see";; esac
[ "${EDGE_CONTAINER_REBUILD:-0}" = 1 ] && build_args+=(--no-cache)
# The build stage is tagged too (a second, cached build), so that the images a code change replaces
# can be removed with the layers only they use: the cache stays one build deep, not one per commit.
BUILD_STAGE_IMAGE="${IMAGE%:*}-build:${IMAGE##*:}"
old_images="$(podman image inspect --format '{{.Id}}' "$IMAGE" "$BUILD_STAGE_IMAGE" 2>/dev/null || true)"
log "build: podman build --layers -t $IMAGE (a few minutes when nothing is cached)"
t0=$(date +%s)
podman build --format docker --layers --pull=never --network host "${build_args[@]}" \
    -t "$IMAGE" -f Containerfile . >"$WORK/build.log" 2>&1 \
    || { tail -25 "$WORK/build.log"; die "podman build failed (log: $WORK/build.log)"; }
build_s=$(($(date +%s) - t0))
cached_steps=$(grep -c -- '--> Using cache' "$WORK/build.log" || true)
podman build --format docker --layers --pull=never --network host "${build_args[@]}" --target build \
    -t "$BUILD_STAGE_IMAGE" -f Containerfile . >>"$WORK/build.log" 2>&1 \
    || die "tagging the build stage failed (log: $WORK/build.log)"
new_images="$(podman image inspect --format '{{.Id}}' "$IMAGE" "$BUILD_STAGE_IMAGE")"
for old in $old_images; do
    case "$new_images" in *"$old"*) ;; *) podman rmi "$old" >/dev/null 2>&1 || true;; esac
done
size_mb=$(($(podman image inspect --format '{{.Size}}' "$IMAGE") / 1000000))
check "build" PASS "$build_s s, $cached_steps steps from cache, image $size_mb MB"

user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
uid="$(podman run --rm --network none --no-healthcheck --entrypoint id "$IMAGE" -u 2>>"$WORK/podman.log")"
if [ "$user" = edge-daemon ] && [ "$uid" = "$APP_UID" ]; then
    check "non-root user" PASS "USER $user, uid $uid"
else
    check "non-root user" FAIL "USER '$user', uid '$uid' (expected edge-daemon, $APP_UID)"
fi
# nothing of the build in the image: npm, node, a compiler, pip, downloaded model sources, test data
leftovers="$(podman run --rm --network none --no-healthcheck --user root --entrypoint sh "$IMAGE" -c '
    for tool in npm node nodejs gcc cc c++ make pip pip3; do command -v "$tool"; done
    ls -d /usr/lib/node_modules /usr/share/nodejs /opt/edge-daemon/models/sources /src /stage 2>/dev/null
    find / -xdev \( -name "*.mp4" -o -name tests -path "*/edge_daemon/*" -o -name shared -path "/work/*" \) -print 2>/dev/null
    ls /opt/edge-daemon/venv/lib/python3*/site-packages | grep -i "^pip" || true' 2>>"$WORK/podman.log")" || true
if [ -z "$leftovers" ]; then
    check "no build tools or data" PASS "no npm, node, compiler, pip, model sources or video in the image"
else
    check "no build tools or data" FAIL "found: $(echo "$leftovers" | tr '\n' ' ')"
fi

# the compose stack's configuration, as the image reads it
if podman run --rm --network none --no-healthcheck -v "$REPO/deploy/compose/config.toml:/config/config.toml:ro" "$IMAGE" \
    config check /config/config.toml >"$WORK/compose-config.out" 2>"$WORK/compose-config.err"; then
    check "compose config" PASS "deploy/compose/config.toml is valid in the image"
else
    check "compose config" FAIL "$(tail -3 "$WORK/compose-config.err" | tr '\n' ' ' | cut -c1-300)"
fi

# --- 3. the demo: the image with no arguments ----------------------------------------------------------
log "demo: podman run --read-only $IMAGE"
t0=$(date +%s)
# --no-healthcheck: podman would report on stderr that it has no systemd to run the check with
if timeout 300 podman run --rm --read-only --network none --no-healthcheck "$IMAGE" >"$WORK/demo.out" 2>"$WORK/demo.err"; then
    demo_rc=0
else
    demo_rc=$?
fi
demo_result="$(python3 - "$WORK/demo.out" "$WORK/demo.err" <<'EOF'
import json, sys
from collections import Counter
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
got = Counter((e["type"], e["identity"]) for e in events)
want = {("recognized", "grace_hopper"), ("recognized", "eileen_collins"), ("unknown", None)}
problems = [f"no {t} event for {i}" for t, i in sorted(want, key=str) if not got[(t, i)]]
ended = sum(1 for e in events if e["type"] == "ended")
if ended != 3:
    problems.append(f"{ended} ended events, not 3")
not_json = 0
for line in open(sys.argv[2]):
    try:
        json.loads(line)
    except ValueError:
        not_json += 1
if not_json:
    problems.append(f"{not_json} log lines on stderr are not JSON")
summary = ", ".join(f"{t} {i or ''}".strip() for t, i in sorted(got, key=str))
print(("FAIL " + "; ".join(problems) + " (got: " + summary + ")") if problems else f"PASS {len(events)} events: {summary}")
EOF
)" || demo_result="FAIL cannot read the demo's output: $(head -c 300 "$WORK/demo.out")"
if [ "$demo_rc" != 0 ]; then
    check "demo (no arguments, --read-only)" FAIL "exit code $demo_rc: $(tail -2 "$WORK/demo.err" | cut -c1-300)"
else
    check "demo (no arguments, --read-only)" "${demo_result%% *}" "${demo_result#* } in $(($(date +%s) - t0)) s"
fi

# --- 4. the daemon on the Hamilton clip, with a mounted config, to a broker on the host -----------------
SHARED="${EDGE_SHARED:-$REPO/../shared}"
HAMILTON="$SHARED/data/video/hamilton"
if [ ! -f "$HAMILTON/short_hamilton_clip.mp4" ] || [ ! -d "$HAMILTON/gallery" ]; then
    check "daemon with a mounted config" SKIP "no shared data at $HAMILTON (the Hamilton clip and gallery photos)"
    summarise
fi
HAMILTON="$(cd "$HAMILTON" && pwd -P)"
command -v mosquitto >/dev/null || {
    [ "$(id -u)" -eq 0 ] && apt-get install -y -qq --no-install-recommends mosquitto >"$WORK/apt-mosquitto.log" 2>&1
} || { check "daemon with a mounted config" FAIL "no mosquitto and none to install from apt"; summarise; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BROKER_PORT=$(free_port)
METRICS_PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$BROKER_PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 50); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$BROKER_PORT" 2>/dev/null && break
    sleep 0.1
done
log "broker: mosquitto on 127.0.0.1:$BROKER_PORT"

# the daemon's state on the host, owned by the image's user, as a named volume would be
mkdir -p "$WORK/data"
chown "$APP_UID:$APP_UID" "$WORK/data" 2>/dev/null || chmod 0777 "$WORK/data"
cat >"$WORK/config.toml" <<EOF
[[cameras]]
name = "stage"
url = "/media/hamilton.mp4"
loop = true

[gallery]
path = "/data/gallery"

[mqtt]
url = "mqtt://127.0.0.1:$BROKER_PORT"

[service]
box = "container-test"
EOF
log "gallery: edge-daemon gallery build in the container"
podman run --rm --read-only --network none --no-healthcheck -v "$HAMILTON/gallery:/photos:ro" -v "$WORK/data:/data" "$IMAGE" \
    gallery build /photos --out /data/gallery --force >"$WORK/gallery.out" 2>"$WORK/gallery.err" \
    || { check "gallery build in the container" FAIL "$(tail -2 "$WORK/gallery.err" | cut -c1-300)"; summarise; }
check "gallery build in the container" PASS "$(find "$WORK/data/gallery" -type f | wc -l) files in /data/gallery"

# a subscriber from the image's own Python (paho-mqtt), printing topic TAB payload per message
podman run -d --name "$NAME-mqtt" --network host --no-healthcheck --entrypoint python3 "$IMAGE" -c '
import sys
import paho.mqtt.client as mqtt
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_connect = lambda c, userdata, flags, reason, properties: c.subscribe("edge-daemon/#", qos=1)
client.on_subscribe = lambda *args: print("SUBSCRIBED", flush=True)
client.on_message = lambda c, userdata, m: print(m.topic + "\t" + m.payload.decode(errors="replace"), flush=True)
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_forever()' "$BROKER_PORT" >/dev/null 2>>"$WORK/podman.log"
for _ in $(seq 100); do podman logs "$NAME-mqtt" 2>/dev/null | grep -q SUBSCRIBED && break; sleep 0.2; done

log "daemon: podman run --read-only -v config.toml:/config/config.toml -v data:/data (the Hamilton clip, looped)"
# the image's environment sets the metrics port (and the health check reads it from there): a free
# one, as the host's network is shared
podman run -d --name "$NAME" --read-only --network host -e EDGE_SERVICE__METRICS_PORT="$METRICS_PORT" \
    -v "$WORK/config.toml:/config/config.toml:ro" -v "$WORK/data:/data" -v "$HAMILTON/short_hamilton_clip.mp4:/media/hamilton.mp4:ro" \
    "$IMAGE" >/dev/null 2>>"$WORK/podman.log"  # podman's complaint that it has no systemd timer for the check
t0=$(date +%s)
healthy=""; recognized=""; state=unknown
while [ $(($(date +%s) - t0)) -lt 240 ]; do
    state="$(podman inspect --format '{{.State.Status}}' "$NAME" 2>/dev/null || echo gone)"
    [ "$state" = running ] || break
    [ -z "$healthy" ] && podman healthcheck run "$NAME" >/dev/null 2>&1 && healthy="$(($(date +%s) - t0)) s"
    [ -z "$recognized" ] && podman logs "$NAME-mqtt" 2>/dev/null | grep -q '"identity": *"lin_manuel_miranda"' && recognized="$(($(date +%s) - t0)) s"
    [ -n "$healthy" ] && [ -n "$recognized" ] && break
    sleep 2
done
if [ -n "$healthy" ]; then
    check "health check" PASS "healthy after $healthy ($(podman inspect --format '{{.State.Healthcheck.Status}}' "$NAME" 2>/dev/null))"
else
    check "health check" FAIL "not healthy after $(($(date +%s) - t0)) s (container $state)"
fi
if [ "$state" = running ]; then
    users="$(podman top "$NAME" user args 2>/dev/null | awk 'NR > 1 { print $1 }' | sort -u | tr '\n' ' ')"
    case "$users" in
        "edge-daemon "|"$APP_UID ") check "runs as non-root" PASS "every process as ${users% }" ;;
        *) check "runs as non-root" FAIL "processes run as: ${users:-nothing listed}" ;;
    esac
    if podman exec "$NAME" sh -c 'touch /opt/edge-daemon/x' 2>/dev/null; then
        check "read-only root" FAIL "the daemon's container could write /opt/edge-daemon"
    else
        check "read-only root" PASS "root filesystem refuses writes; /data and the daemon work"
    fi
fi

log "daemon: SIGTERM"
podman kill --signal TERM "$NAME" >/dev/null 2>&1 || true
t1=$(date +%s)
exit_code="$(timeout 90 podman wait "$NAME" 2>/dev/null || echo "none (still running after 90 s)")"
stop_s=$(($(date +%s) - t1))
podman logs "$NAME" >"$WORK/daemon.out" 2>"$WORK/daemon.err" || true
sleep 1  # the subscriber's last messages
podman logs "$NAME-mqtt" >"$WORK/mqtt.out" 2>&1 || true
if [ "$exit_code" = 0 ]; then
    check "SIGTERM" PASS "exit code 0 after $stop_s s"
else
    check "SIGTERM" FAIL "exit code $exit_code: $(tail -2 "$WORK/daemon.err" | cut -c1-300)"
fi
mqtt_result="$(python3 - "$WORK/mqtt.out" <<'EOF'
import json, sys
events = []
for line in open(sys.argv[1]):
    topic, _, payload = line.rstrip("\n").partition("\t")
    if topic == "edge-daemon/events":
        events.append(json.loads(payload))
named = {e["identity"] for e in events if e["identity"]}
decided = {e["track_id"] for e in events if e["type"] != "ended"}
ended = {e["track_id"] for e in events if e["type"] == "ended"}
problems = []
if not any(e["type"] == "recognized" and e["identity"] == "lin_manuel_miranda" for e in events):
    problems.append("no recognized event for lin_manuel_miranda")
if named - {"lin_manuel_miranda"}:
    problems.append(f"other names: {sorted(named - {'lin_manuel_miranda'})}")
if decided - ended:
    problems.append(f"tracks without an ended event: {sorted(decided - ended)}")
verdicts = sorted({e["verdict"] for e in events})
summary = f"{len(events)} events on {len(decided | ended)} tracks, verdicts {verdicts}, names {sorted(named)}"
print(("FAIL " + "; ".join(problems) + f" ({summary})") if problems else "PASS " + summary)
EOF
)" || mqtt_result="FAIL cannot read the subscriber's output ($WORK/mqtt.out)"
check "events over MQTT" "${mqtt_result%% *}" "${mqtt_result#* }${recognized:+; first lin_manuel_miranda after $recognized}"
spool_result="$(python3 - "$WORK/data/spool.db" <<'EOF'
import sqlite3, sys
from pathlib import Path
if not Path(sys.argv[1]).is_file():
    print("FAIL no spool at /data/spool.db")
else:
    left = sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM events").fetchone()[0]
    print(("PASS" if left == 0 else "FAIL") + f" {left} events left in /data/spool.db")
EOF
)" || spool_result="FAIL cannot read $WORK/data/spool.db"
check "spool empty after SIGTERM" "${spool_result%% *}" "${spool_result#* }"
summarise
