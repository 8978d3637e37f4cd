"""NAS on NNI 3.0: the depth and attention model spaces (space, attention_space), settings, the
evaluator, multi-trial studies (study) and one-shot supernets (oneshot); `python -m nas`."""
