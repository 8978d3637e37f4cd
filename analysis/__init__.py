"""nnisuite package: analysis."""
