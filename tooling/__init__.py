"""Command-line tooling behind the Makefile targets (not part of the constructs)."""
