"""``anomaly ui``: the review pages for flagged events and models (the ``ui`` extra: Flask, waitress)."""
