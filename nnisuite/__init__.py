"""nnisuite: AutoML / NAS studies on Microsoft NNI 3.0 and PyTorch, under one import name.

    nnisuite SUBCOMMAND ...              # the command (nnisuite.cli)
    python -m nnisuite.trials.mlp ...    # any module by its full name

The repository keeps one folder per concern at its top level (trials/, models/, launcher/, nas/,
config/, study/, deploy/, analysis/, benchmarks/, nni_patches/, and the data folders
experiments/ and search_spaces/); Python sees them only as nnisuite.trials, nnisuite.models, ...
A wheel maps them under nnisuite/ (pyproject's package-dir); in a source checkout this package
finds them beside its own folder (the __path__ line below), so `python3 -m nnisuite.launcher`
works from the checkout with any python3, as plain `nnictl create` needs. No top-level name
other than `nnisuite` is ever installed or imported: a user's launcher.py, models.py, trials/,
... are theirs alone.
"""

import sys


def _said_in_one_line(hook):
    """sys.excepthook for a process started as `python -m nnisuite.X` (one of nnisuite's
    commands): a Ctrl-C its code did not handle (one during its imports, before its `main`
    catches them) is said as the commands say it, `interrupted`, not as a traceback of the
    import machinery; the exit stays a SIGINT's (a shell shows 130). Anything else: `hook`."""

    def said(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
        else:
            hook(kind, value, tb)

    return said


# while `python -m` looks for its module, sys.argv[0] is "-m" (Python's documentation): this
# package is imported then only when the module run is one of nnisuite's
if sys.argv[:1] == ["-m"]:
    sys.excepthook = _said_in_one_line(sys.excepthook)

from pathlib import Path  # noqa: E402  (after the hook: a Ctrl-C now is one line)

HOME = Path(__file__).resolve().parent
# a source checkout (this folder beside pyproject.toml and trials/): its packages are nnisuite's
SOURCE = (
    HOME.parent
    if (HOME.parent / "trials" / "__init__.py").is_file()
    and (HOME.parent / "pyproject.toml").is_file()
    else None
)
if SOURCE is not None and str(SOURCE) not in __path__:
    __path__.append(str(SOURCE))
# where the shipped data lives (experiments/, search_spaces/, benchmarks/tables/): the checkout,
# or this package's folder in a wheel
DATA = SOURCE or HOME

from nnisuite.nni_patches import lazy_import  # noqa: E402  (needs __path__ above)

lazy_import.install()  # `import nni` defers scipy.stats until used (nni_patches/lazy_import.py)
