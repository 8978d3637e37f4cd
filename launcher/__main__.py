"""`python3 -m nnisuite.launcher MODULE ARGS...`: the trial command; see
nnisuite.launcher.client."""

from nnisuite.launcher.client import main

main()
