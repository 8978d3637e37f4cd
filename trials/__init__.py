"""Trial code: data, training engine, metrics, reporting, and the entry points
(`python -m trials.mlp`, `python -m trials.rnn`). How trials are started is launcher/'s job.
"""
