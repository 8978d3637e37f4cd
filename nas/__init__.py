"""NAS on NNI 3.0: the depth and attention model spaces (space, attention_space), settings, the
evaluator, multi-trial studies (study) and one-shot supernets (oneshot); `python -m nas`."""

from launcher import nni_import

nni_import.install()  # `import nni` defers scipy.stats until used (launcher/nni_import.py)
