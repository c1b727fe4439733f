"""Data sets that arrive without a hub, and the readers/checkers for users' own data."""
