"""The review pages, served on the daemon's HTTP port under ``/review`` when ``review.enabled``:
server-rendered HTML, no external assets, usable from a phone and a keyboard.

  access.py    the token, its cookie and the forms' CSRF token
  forms.py     a request's query, form fields and uploads, parsed once
  layout.py    the document around each page, the navigation, the refusals
  context.py   ``ReviewContext``: what the pages work with (history, gallery, matcher, cameras)
  pages.py     ``ReviewPages``: the router (access and CSRF checked here for every page)
  unknowns.py  ``/review``: unknown groups to enrol, recent faces, "not this person"
  people.py    ``/review/people``: who is enrolled, with photos and last seen; add from uploaded
               photos (``photos.py`` finds and embeds their faces), rename, remove a photo or a person
  cameras.py   ``/review/cameras``: each camera's latest frame with its faces' widths, gates and verdicts
  decisions.py ``/review/decisions``: the latest decisions, filtered; "this is …"; reprocessing the
               history after the gallery changed (``history.reprocess``), and what it revised

docs/guide/review.md is the user's guide to them.
"""

from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.layout import Response
from edge_daemon.service.review.pages import ReviewPages

__all__ = ["Response", "ReviewContext", "ReviewPages"]
