"""NAS on NNI 3.0: the depth and attention model spaces (space, attention_space), settings, the
evaluator, multi-trial studies (study) and one-shot supernets (oneshot); `python -m
nnisuite.nas`."""

from nnisuite.nni_patches import lazy_import

lazy_import.install()  # `import nni` defers scipy.stats until used (nni_patches/lazy_import.py)
