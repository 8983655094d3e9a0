"""``python -m edge_daemon.cli``: the same command line as ``edge-daemon``."""

import sys

from edge_daemon.cli import main

sys.exit(main())
