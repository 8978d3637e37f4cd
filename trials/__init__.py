"""Trial code: data, training engine, metrics, reporting, and the entry points
(`python -m nnisuite.trials.mlp`, `python -m nnisuite.trials.rnn`). How trials are started is
launcher/'s job.
"""
