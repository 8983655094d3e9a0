"""The Debian mirror debootstrap fetches the arm64 rootfs from: the first http(s) mirror this host's
apt uses for the suite, from deb822 ``*.sources`` files first, then one-line ``*.list`` files."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"


def _http(uris: list[str]) -> str | None:
    return next((uri for uri in uris if uri.startswith(("http://", "https://"))), None)


def deb822_mirror(text: str, suite: str) -> str | None:
    """The first http(s) URI of the first stanza whose Suites include SUITE."""
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields = {}
        for line in stanza.splitlines():
            key, colon, value = line.partition(":")
            if colon and key in ("URIs", "Suites"):
                fields[key] = value.split()
        if suite in fields.get("Suites", []):
            mirror = _http(fields.get("URIs", []))
            if mirror:
                return mirror
    return None


def one_line_mirror(text: str, suite: str) -> str | None:
    """The first ``deb URI SUITE ...`` line with an http(s) URI, options in brackets left out."""
    for line in text.splitlines():
        fields = re.sub(r"\[[^]]*\]", "", line, count=1).split()
        if len(fields) >= 3 and fields[0] == "deb" and fields[2] == suite and _http(fields[1:2]):
            return fields[1]
    return None


def apt_mirror(suite: str, etc_apt: Path = Path("/etc/apt")) -> str:
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        mirror = deb822_mirror(path.read_text(encoding="utf-8", errors="replace"), suite)
        if mirror:
            return mirror
    for path in [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            mirror = one_line_mirror(path.read_text(encoding="utf-8", errors="replace"), suite)
            if mirror:
                return mirror
    return DEFAULT_MIRROR
