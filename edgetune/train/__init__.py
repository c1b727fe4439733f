"""Training pieces shared by tasks (torch required: install the `train` extra)."""
