#!/bin/sh
# The container image's entry point (under tini). With arguments: the edge-daemon command they name
# (e.g. "gallery build /data/photos --out /data/gallery"). Without: the daemon on the mounted
# /config/config.toml, or the demo when no config is mounted, so that a bare "docker run IMAGE"
# shows what the daemon does.
set -e
if [ "$#" -eq 0 ]; then
    if [ -f /config/config.toml ]; then
        set -- run --config /config/config.toml
    else
        set -- demo --out /data/demo
    fi
fi
exec edge-daemon "$@"
