"""`python -m nnisuite ...`: the same as the `nnisuite` console script."""

import sys

from nnisuite.cli import main

sys.exit(main())
