"""The life of every trial: parameters -> data -> model -> fit -> one final report.

    run_trial(MLPParams, build_mlp, argv)   # what `python -m nnisuite.trials.mlp` does

Heavy modules (torch, nni) are imported here, not at the entry points, so a parameter error or
`--help` answers at once.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from nnisuite.trials.params import resolve_params
from nnisuite.trials.report import (
    NNIReporter,
    StandaloneReporter,
    default_out_dir,
    running_under_nni,
)

# Keys some NNI tuners add to a trial's parameters: Hyperband and BOHB a budget (here: epochs);
# PBT the checkpoint folders a trial continues from and saves to.
BUDGET = "TRIAL_BUDGET"
PBT_LOAD, PBT_SAVE = "load_checkpoint_dir", "save_checkpoint_dir"


def tuner_extras(nni_params: dict) -> dict:
    """Take the tuners' own keys out of the parameters NNI sent."""
    return {k: nni_params.pop(k) for k in (BUDGET, PBT_LOAD, PBT_SAVE) if k in nni_params}


def fit_config(params):
    from nnisuite.trials.engine import FitConfig

    names = {f.name for f in dataclasses.fields(FitConfig)}
    return FitConfig(**{k: v for k, v in dataclasses.asdict(params).items() if k in names})


def run_trial(params_cls, build_model, argv=None, prog="trial", description="") -> dict:
    """Run one trial; returns the final metrics (also reported to NNI or written to files)."""
    reporter, nni_params, extras = None, None, {}
    if running_under_nni():
        # NNI 3.0 stops a trial with SIGINT and calls it EARLY_STOPPED / USER_CANCELED only when
        # the process dies of the signal; a KeyboardInterrupt exit (code 1) would read FAILED.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        reporter = NNIReporter()
        nni_params = reporter.next_parameters()
        extras = tuner_extras(nni_params)
    params = resolve_params(params_cls, argv, nni_params, prog=prog, description=description)
    if BUDGET in extras:  # Hyperband / BOHB: the budget is the number of epochs
        params.epochs = max(1, round(float(extras[BUDGET])))
    announce = None
    if reporter is None:
        out = params.out or default_out_dir()
        reporter = StandaloneReporter(out, dataclasses.asdict(params) | {"out": str(out)})
        print(f"{prog}: {params}", file=sys.stderr)

        def announce(line):
            print(f"{prog}: {line}", file=sys.stderr)

    result = train(
        params,
        build_model,
        on_epoch=reporter.intermediate,
        announce=announce,
        resume_from=extras.get(PBT_LOAD),
        save_to=extras.get(PBT_SAVE),
    )
    if isinstance(reporter, StandaloneReporter):
        reporter.params["fused"] = result.fused  # the path taken, not only the flag
        reporter.params["device"] = params.device  # where it ran (a CUDA request may fall back)
        reporter.params["data_dir"] = params.data_dir
    if BUDGET in extras:
        result.final["budget"] = float(extras[BUDGET])
    if result.resume_note:
        print(f"{prog}: {result.resume_note}", file=sys.stderr)
    reporter.final(result.final)
    return result.final


def train(params, build_model, on_epoch=None, announce=None, resume_from=None, save_to=None):
    """Data -> seeded model -> fit: the training every trial runs (and nnisuite.benchmarks.study
    runs in-process for Optuna). `announce(line)` hears which path the engine takes; resume_from /
    save_to are checkpoint folders (NNI's PBT). Returns the engine's FitResult."""
    import torch

    from nnisuite.trials.engine import fast_path, pick_device
    from nnisuite.trials.params import ParameterError

    if params.threads:
        torch.set_num_threads(params.threads)
    from nnisuite.trials.data import load_dataset
    from nnisuite.trials.engine import fit

    config = fit_config(params)
    config.resume_from, config.save_to = resume_from, save_to
    if (config.device or "").startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {config.device}: no GPU visible, training on the CPU", file=sys.stderr)
        config.device = "cpu"
    params.device = str(pick_device(config.device))  # what runs, recorded as such
    if params.dataset == "digits" and params.data_dir:
        print(f"--data-dir {params.data_dir}: unused, digits is embedded", file=sys.stderr)
        params.data_dir = None
    if (
        config.device in (None, "cpu")
        and os.environ.get("CUDA_VISIBLE_DEVICES")
        and (not torch.cuda.is_available())
    ):
        print(
            f"no GPU visible (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}): "
            "training on the CPU",
            file=sys.stderr,
            flush=True,
        )
    data = load_dataset(params.dataset, params.data_dir, seed=params.seed)
    torch.manual_seed(params.seed)
    model = build_model(params, data)
    try:
        _, why = fast_path(config, model)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    if announce:
        announce(f"training path: {why}")
    return fit(model, data, config, on_epoch=on_epoch)


def main_guard(fn, argv=None) -> int:
    """Run an entry point, turning expected errors into one line and exit code 2."""
    from nnisuite.trials.data import DatasetError
    from nnisuite.trials.params import ParameterError

    try:
        fn(argv)
    except (ParameterError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
