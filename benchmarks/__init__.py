"""Speed benchmarks (targets live here, never in timed tests): the training epoch against the
log's pipeline (epoch), a study against Optuna (study), the exporter at scale (export)."""

from nnisuite.nni_patches import lazy_import

lazy_import.install()  # `import nni` defers scipy.stats until used (nni_patches/lazy_import.py)
