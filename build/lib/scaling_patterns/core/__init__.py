"""Shared helpers for every pattern (settings, naming, IAM, Lambda packaging, stacks)."""
