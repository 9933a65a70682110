"""Sources: turn files on disk into the in-memory datasets detectors fit and score."""
