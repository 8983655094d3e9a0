"""The face history: every face behind a decision, kept so an operator can act on it later.

  ``store``     ``FaceHistory``: the faces (rows in SQLite, crops as JPEG files) and the ended tracks
                they belong to, bounded in count and age; ``FaceRow`` and ``TrackRow`` read them back.
Queries are functions over the rows ``FaceHistory.faces`` returns:
  ``grouping``  ``HistoryGroups``: unknown tracks grouped into people as they end, and the listing of
                those groups (the rule is in its docstring);
  ``search``    ``search_faces``, the stored faces most like a query embedding;
  ``sheet``     ``contact_sheet``, one PNG row of crops per cluster, for a person to look at.
"""

from edge_daemon.history.grouping import Cluster, GroupingRule, HistoryGroups
from edge_daemon.history.search import search_faces
from edge_daemon.history.sheet import LABEL_HEIGHT, contact_sheet
from edge_daemon.history.store import CROPS_DIR, DB_FILE, FaceHistory, FaceRow, TrackRow, history_directory

__all__ = [
    "CROPS_DIR",
    "DB_FILE",
    "LABEL_HEIGHT",
    "FaceHistory",
    "Cluster",
    "FaceRow",
    "GroupingRule",
    "HistoryGroups",
    "TrackRow",
    "contact_sheet",
    "history_directory",
    "search_faces",
]
