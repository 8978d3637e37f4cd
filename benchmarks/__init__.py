"""nnisuite package: benchmarks."""
