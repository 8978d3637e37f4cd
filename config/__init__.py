"""Experiment files and their checks, before anything starts: loading a YAML as NNI does
(experiment), the trial it runs (trial) and the names that trial reads (scan), search spaces
(search_space), NNI's algorithms (algorithms), remote workers (machines), study-of-studies plans
(plan), and `nnisuite validate` (validate). Reads files; starts nothing."""
