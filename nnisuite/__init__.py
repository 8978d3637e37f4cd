"""nnisuite's one command: `nnisuite SUBCOMMAND ...` (nnisuite.cli). The work itself lives in
the packages named for it: experiments/, nas/, analysis/, benchmarks/, trials/, models/."""

from launcher import nni_import

nni_import.install()  # `import nni` defers scipy.stats until used (launcher/nni_import.py)
