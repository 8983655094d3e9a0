"""The face history: every face behind a decision, kept so an operator can act on it later.

  ``schema``    the history directory's files (SQLite database, JPEG crops), its tables, the
                upgrades of older databases, and setting a damaged one aside when opening it;
  ``store``     ``FaceHistory``: records the faces and the ended tracks they belong to, bounded in
                count and age, and reads them back through ``queries``;
  ``queries``   the faces, tracks and unknown groups read back, filtered (``FaceRow``, ``TrackRow``,
                ``Cluster``), and the review pages' listings (``DecisionRow``, ``RevisedTrack``).
Built on them:
  ``grouping``  ``HistoryGroups``: unknown tracks grouped into people as they end, and the listing of
                those groups (the rule, ``GroupingRule``, in its docstring);
  ``reprocess`` ``reprocess``: recent unnamed tracks decided again after the gallery changed, their
                new answer recorded beside the old (``Revision``); nothing is sent again;
  ``search``    ``search_faces``, the stored faces most like a query embedding;
  ``sheet``     ``contact_sheet``, one PNG row of crops per cluster, for a person to look at.
"""

from edge_daemon.history.grouping import GroupingRule, HistoryGroups, grouping_rule
from edge_daemon.history.queries import Cluster, DecisionRow, FaceRow, RevisedTrack, Revision, TrackRow
from edge_daemon.history.reprocess import Reprocessed, reprocess
from edge_daemon.history.schema import CROPS_DIR, DB_FILE
from edge_daemon.history.search import search_faces
from edge_daemon.history.sheet import LABEL_HEIGHT, contact_sheet
from edge_daemon.history.store import FaceHistory, history_directory

__all__ = [
    "CROPS_DIR",
    "DB_FILE",
    "LABEL_HEIGHT",
    "FaceHistory",
    "Cluster",
    "DecisionRow",
    "FaceRow",
    "GroupingRule",
    "HistoryGroups",
    "Reprocessed",
    "RevisedTrack",
    "Revision",
    "TrackRow",
    "contact_sheet",
    "grouping_rule",
    "history_directory",
    "reprocess",
    "search_faces",
]
