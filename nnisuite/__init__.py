"""nnisuite's one command: `nnisuite SUBCOMMAND ...` (nnisuite.cli). The work itself lives in
the packages named for it: experiments/, nas/, analysis/, benchmarks/, trials/, models/."""
