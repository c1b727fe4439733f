"""The Click CLI: thin commands; errors become one line + hint + exit code here only."""
