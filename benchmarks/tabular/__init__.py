"""A tabulated benchmark of the log's 3.17 space, built from real NNI runs, and a simulated NNI
that drives NNI's own tuners and assessors on it (`python -m nnisuite.benchmarks.tabular --help`).

table.py: the grid, the table's files, lookups; cells_tuner.py: the NNI tuner a build gives the
cells it still needs; build.py: the build through nnisuite's runner; simulator.py: the simulated
manager, clock and study-of-studies.
"""
