"""nnisuite package: nas."""
