"""Trial code: data, training engine, metrics, reporting, and the entry points.

Kept import-free: `python3 -m trials.launch` must start on the standard library alone.
"""
