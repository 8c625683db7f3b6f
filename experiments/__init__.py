"""Experiment scripts (one per experiment, run with ``python -m experiments.<name>``)."""
