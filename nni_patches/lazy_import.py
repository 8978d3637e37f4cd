"""`import nni` without scipy.stats until a distribution is used and without pandas until a
DataFrame is encoded: 1.0-1.3 s of CPU less in every process of a study that imports nni (the
runner, the tuner's dispatcher, the warm launcher).

    from nnisuite.nni_patches import lazy_import
    lazy_import.install()        # before nni is first imported; idempotent

NNI 3.0's `import nni` runs nni/mutable/mutable.py, whose only use of scipy.stats is
`from scipy.stats import norm, lognorm, uniform, loguniform` at the top and calls of those four
in `Numerical.__init__`; importing scipy.stats is most of `import nni`'s time. While that one
module executes, a stand-in scipy.stats holds four callables that import the real scipy.stats
on first call and call its function. Then nni's serializer imports json_tricks, whose
json_tricks/nonp.py runs `import pandas` only to choose its pandas encoder and hook (both
import pandas themselves when called, and the encoder is called only for an object JSON cannot
write, the hook only for a dict marked as a DataFrame): while that module executes, an empty
stand-in pandas lets it choose them as with pandas (0.37 s here). Each stand-in is gone from
sys.modules as soon as its module has run, so anything else that imports scipy.stats or pandas
(a tuner, nnisuite's statistics and export) gets the real one. Where the real one is already
imported, nothing changes. NNI is fixed from the outside: an import hook in processes nnisuite
starts, the installed packages untouched. Off with NNISUITE_LAZY_SCIPY=0 (every process
nnisuite starts inherits the variable). NNI's TPE module likewise imports scipy.special for the
one function `erf` (0.13 s of CPU in every TPE dispatcher and every `nnisuite validate` of a TPE
study); it gets a stand-in `erf` that imports scipy.special on its first call, from the first
suggestion past the random start-up on.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import types

MODULE = "nni.mutable.mutable"
NAMES = ("norm", "lognorm", "uniform", "loguniform")
TPE = "nni.algorithms.hpo.tpe_tuner"
# the module executed -> (the import it gets a stand-in for, the stand-in's deferred callables)
DEFERRED = {
    MODULE: ("scipy.stats", NAMES),
    "json_tricks.nonp": ("pandas", ()),
    TPE: ("scipy.special", ("erf",)),
}
SWITCH = "NNISUITE_LAZY_SCIPY"


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


class Deferred:
    """MODULE.NAME (scipy.stats.norm, scipy.special.erf), imported when first called."""

    def __init__(self, name: str, module: str = "scipy.stats"):
        self.name, self.module = name, module

    def __call__(self, *args, **kwargs):
        real = importlib.import_module(self.module)  # only where nni (and scipy) is there
        return getattr(real, self.name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}, imported on first call (nnisuite)>"


class _Loader:  # importlib's Loader protocol (importlib.abc itself costs 10 ms to import)
    def __init__(self, real, deferred: str, names: tuple[str, ...]):
        self.real, self.deferred, self.names = real, deferred, names

    def create_module(self, spec):
        return self.real.create_module(spec)

    def __getattr__(self, name):  # get_source, get_code, ...: the real loader's
        return getattr(self.real, name)

    def exec_module(self, module):
        if self.deferred in sys.modules:
            self.real.exec_module(module)
            return
        stand_in = types.ModuleType(self.deferred, "nnisuite's stand-in while nni imports")
        for name in self.names:
            setattr(stand_in, name, Deferred(name, self.deferred))
        sys.modules[self.deferred] = stand_in
        try:
            self.real.exec_module(module)
        finally:
            if sys.modules.get(self.deferred) is stand_in:
                del sys.modules[self.deferred]


class _Finder:  # importlib's MetaPathFinder protocol
    def find_spec(self, fullname, path, target=None):
        if fullname not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, *DEFERRED[fullname])
        return spec


def installed() -> bool:
    return any(isinstance(finder, _Finder) for finder in sys.meta_path)


def install() -> bool:
    """Defer scipy.stats in this process's (and its forks') `import nni`; True when in place."""
    if not enabled() or MODULE in sys.modules:
        return False
    if not installed():
        sys.meta_path.insert(0, _Finder())
    return True
