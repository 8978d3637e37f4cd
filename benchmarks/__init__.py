"""Speed benchmarks (targets live here, never in timed tests): the training epoch against the
log's pipeline (epoch), a study against Optuna (study), the exporter at scale (export)."""

from launcher import nni_import

nni_import.install()  # `import nni` defers scipy.stats until used (launcher/nni_import.py)
