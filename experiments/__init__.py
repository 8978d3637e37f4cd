"""Experiment files and their life: YAML configs (config), their validation (validate,
search_space, algorithms), one NNI session with its watchdog (manager, guard), the runner
(run), resume (resume), repeated studies (plan, repeat), a study's best model (best), NNI 3.0
tuner fixes (nni_fixes)."""

from launcher import nni_import

nni_import.install()  # `import nni` defers scipy.stats until used (launcher/nni_import.py)
