"""The face history: every face behind a decision, kept so an operator can act on it later.

  ``store``     ``FaceHistory``: the faces (rows in SQLite, crops as JPEG files), bounded in count
                and age, and the ``FaceRow`` each one is read back as.
Queries are functions over the rows ``FaceHistory.faces`` returns:
  ``grouping``  ``cluster_faces`` groups faces into people (the rule is in its docstring);
  ``search``    ``search_faces``, the stored faces most like a query embedding;
  ``sheet``     ``contact_sheet``, one PNG row of crops per cluster, for a person to look at.
"""

from edge_daemon.history.grouping import cluster_faces
from edge_daemon.history.search import search_faces
from edge_daemon.history.sheet import LABEL_HEIGHT, contact_sheet
from edge_daemon.history.store import CROPS_DIR, DB_FILE, FaceHistory, FaceRow, history_directory

__all__ = [
    "CROPS_DIR",
    "DB_FILE",
    "LABEL_HEIGHT",
    "FaceHistory",
    "FaceRow",
    "cluster_faces",
    "contact_sheet",
    "history_directory",
    "search_faces",
]
