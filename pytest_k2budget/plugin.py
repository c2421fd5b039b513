"""The pytest face of k2budget (being written)."""
