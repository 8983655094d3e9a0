"""Benchmarks: scripts that measure edge-daemon on this box and print numbers and ratios (``--json``:
one JSON object as the last line). Not part of the installed package and not tests; they read the
shared data beside the checkout (``../shared/data``) through ``tests.support.paths``.

Run one from the repository root as a module, so that ``edge_daemon``, ``bench`` and ``tests.support``
are imported from this checkout::

    .venv/bin/python -m bench.NAME --help
    .venv/bin/python -m bench.search --quick

``bench.common`` holds what the benchmarks share: the shared-data paths, the argument parser, CPU
time and memory of processes, timing a call, reading a clip's frames, printing a table, serving a
clip over RTSP.
"""
