"""The file library: what a file may become and when it may change (see its modules)."""
