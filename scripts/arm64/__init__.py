"""The logic of scripts/test-arm64.sh that needs no root: the aarch64 resolution and the pins
(resolution), the apt mirror for debootstrap (apt_sources), the steps both architectures run
(steps), the lossless demo clip (lossless), the comparison of their results (comparison) and the
PASS/FAIL table (checks). The script calls them through ``python -m scripts.arm64`` (see
__main__.py) from the repository root; steps.py alone runs by path inside the arm64 rootfs."""
