"""The trial nnisuite.benchmarks.manager runs: it asks NNI for its parameters and reports them back
at once, so that what is measured is NNI's manager, not training.

    python3 -m nnisuite.launcher nnisuite.benchmarks.trivial_trial  # the trial command (forked)
"""

import nni

if __name__ == "__main__":
    params = nni.get_next_parameter() or {}
    nni.report_final_result(float(params.get("x", 0.0)))
