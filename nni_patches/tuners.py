"""NNI 3.0 tuners with a bug nnisuite works around by subclassing; experiment files name them as
custom tuners:

    tuner: {className: nnisuite.nni_patches.tuners.Hyperband, codeDirectory: .., classArgs: {...}}

Hyperband and BOHB give their trials string parameter ids ("0_0_0") and, on the first metric,
compare one with an int (nni/recoverable.py, is_created_in_previous_exp: `param_id <=
self.recovered_max_param_id`): TypeError, the dispatcher dies and NNI keeps saying RUNNING
with nothing running. An id that is not an int was never resumed (NNI's own recovery skips
them), so the answer for it is False; everything else is NNI's.

GP, once its random start is over, hands scipy.optimize.minimize a 2-D starting point
(nni/algorithms/hpo/gp_tuner/util.py, acq_max: `x_try.reshape(1, -1)`), which scipy >= 1.11
refuses ("'x0' must only have one dimension"): the dispatcher's command thread dies while its
process lives on, and nothing runs again. This module's GP gives acq_max a minimize that
flattens the point and returns what acq_max indexes.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from nni.algorithms.hpo.gp_tuner import util as gp_util
from nni.algorithms.hpo.gp_tuner.gp_tuner import GPTuner
from nni.algorithms.hpo.hyperband_advisor import Hyperband as NNIHyperband


def created_in_previous_exp(advisor, param_id) -> bool:
    return isinstance(param_id, int) and param_id <= advisor.recovered_max_param_id


class Hyperband(NNIHyperband):
    def is_created_in_previous_exp(self, param_id) -> bool:
        return created_in_previous_exp(self, param_id)


def flat_minimize(fun, x0, **kwargs):
    """scipy's minimize on a 1-D start, with `fun` as a scalar; res.fun an array, as acq_max
    reads res.fun[0]."""
    res = scipy.optimize.minimize(lambda x: float(np.ravel(fun(x))[0]), np.ravel(x0), **kwargs)
    res.fun = np.atleast_1d(res.fun)
    return res


class GP(GPTuner):
    def __init__(self, *args, **kwargs):
        gp_util.minimize = flat_minimize  # in the dispatcher process that builds this tuner
        super().__init__(*args, **kwargs)


def _bohb():
    from nni.algorithms.hpo.bohb_advisor import BOHB as NNIBOHB  # needs nnisuite[bohb]

    class BOHB(NNIBOHB):
        def is_created_in_previous_exp(self, param_id) -> bool:
            return created_in_previous_exp(self, param_id)

    BOHB.__module__ = __name__
    BOHB.__qualname__ = "BOHB"
    return BOHB


def __getattr__(name: str):
    if name == "BOHB":  # imported on use: ConfigSpace is an extra
        return _bohb()
    raise AttributeError(name)
