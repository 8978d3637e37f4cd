"""nnisuite package: experiments."""
