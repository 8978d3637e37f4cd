"""`python3 -m launcher MODULE ARGS...`: the trial command; see launcher.client."""

from launcher.client import main

main()
