"""`make rollout-check`: what each setting change does to running infrastructure (see check.py)."""
