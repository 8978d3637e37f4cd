"""Pure PyTorch modules (no I/O, no nni): MLP, RNN classifiers, attention, row transformer, and
what a model costs (costs: the cost keys every trial reports, and their measurement)."""
