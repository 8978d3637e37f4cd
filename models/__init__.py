"""Pure PyTorch modules (no I/O, no nni): MLP, RNN classifiers, attention, row transformer."""
