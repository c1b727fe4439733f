"""`edgetune data check`: audit a data set before training (counts, unreadable files, leaks
across splits, degenerate boxes, audio levels), with `--json` and an HTML page."""
