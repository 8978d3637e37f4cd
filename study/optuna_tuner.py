"""Optuna's samplers as NNI tuners: one NNI Tuner class, backed by an Optuna study in memory.

    tuner:
      className: nnisuite.study.optuna_tuner.OptunaTuner
      codeDirectory: ..                    # the folder holding `experiments/` (the repo root)
      classArgs: {sampler: tpe, optimize_mode: maximize, seed: 0}
    # several objectives (keys of the trial's final dict; costs are minimized by default):
      classArgs: {sampler: nsgaii, objectives: [default, parameters], seed: 0}

Samplers (classArgs `sampler`): `tpe` (multivariate TPE with group decomposition and the
constant liar for trials still running), `cmaes` (CMA-ES; one objective; a categorical
parameter is sampled at random beside it: Optuna's rule, logged once, not per trial), `gp`
(Gaussian process, Optuna's GPSampler), `qmc` (scrambled Sobol), `random`, and for several
objectives `nsgaii` (NSGA-II)
and `motpe` (Optuna's TPE on a multi-objective study: the MOTPE algorithm). `sampler_args`
go to the sampler's constructor as they are (e.g. {n_startup_trials: 5}).

Objectives: `optimize_mode` for NNI's `default` alone (NNI's tuners' argument), or
`objectives` (keys of the final result dict) with `directions` (maximize / minimize per key;
default: nnisuite.models.costs' keys minimized, `default` as optimize_mode, any other key required).

As an NNI tuner: the search space is converted parameter by parameter (choice, also nested
with `_name`; randint; uniform, quniform; loguniform, qloguniform: a q-type is sampled
continuous and rounded as NNI rounds it, the sampler learning the continuous value); the
unbounded types (normal, qnormal, lognormal, qlognormal) are refused with an error naming the
parameter. Each NNI parameter id is an Optuna trial asked for when NNI wants parameters and
told when its final result arrives (ask-and-tell: trials still running are pending, so any
concurrency works); a trial that ends without a final is told PRUNED when NNI says
EARLY_STOPPED (an assessor stopped it) and FAIL otherwise. `import_data` (NNI's resume, and
`nnictl experiment import`) adds the earlier trials as finished ones. `seed` seeds the sampler.

NNI 3.0 tells a tuner only whether a trial succeeded (MsgDispatcher.handle_trial_end); to
tell early-stopped from failed, the tuner wraps that method from outside (once, in the
dispatcher's process) to hand it the event first.
"""

from __future__ import annotations

import json
import logging

from nni.tuner import Tuner

from nnisuite.analysis import direction
from nnisuite.analysis.direction import Objectives

SAMPLERS = ("tpe", "cmaes", "gp", "qmc", "random", "nsgaii", "motpe")
SINGLE_ONLY = ("cmaes",)
UNBOUNDED = ("normal", "qnormal", "lognormal", "qlognormal")
EARLY_STOPPED = "EARLY_STOPPED"

# under NNI's `nni` logger: its handlers write the dispatcher's log (log/dispatcher.log)
log = logging.getLogger("nni.nnisuite.optuna_tuner")


class SpaceError(ValueError):
    """A search-space entry Optuna's samplers cannot take (names the parameter)."""


class ArgsError(ValueError):
    """classArgs OptunaTuner cannot run with."""


# ---------------------------------------------------------------- the search space


def primitive(values) -> bool:
    """Values Optuna keeps as categorical choices themselves (else their index is sampled)."""
    ok = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    return ok and len({(type(v), v) for v in values}) == len(values)


def convert(space: dict, pick, given: dict | None = None, prefix: str = "") -> dict:
    """NNI parameters for `space`, each Optuna parameter chosen by `pick(name, distribution,
    known)` (`known`: the internal value when the parameters are `given`, for import_data)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not isinstance(space, dict):
        raise SpaceError(f"{prefix or 'search space'}: must be a mapping, got {space!r}")
    params = {}
    for name, spec in space.items():
        key = f"{prefix}{name}"
        if not isinstance(spec, dict) or "_type" not in spec or "_value" not in spec:
            raise SpaceError(f"{key}: needs _type and _value, got {spec!r}")
        kind, value = spec["_type"], spec["_value"]
        old = (given or {}).get(name) if given is not None else None
        if kind == "choice":
            if not isinstance(value, list) or not value:
                raise SpaceError(f"{key}: choice needs a non-empty list, got {value!r}")
            if primitive(value) and not any(isinstance(v, dict) for v in value):
                known = old if given is not None else None
                params[name] = pick(key, CategoricalDistribution(value), known)
                continue
            known = None
            if given is not None:
                known = next(
                    (
                        i
                        for i, v in enumerate(value)
                        if v == old
                        or (isinstance(v, dict) and isinstance(old, dict))
                        and v.get("_name") == old.get("_name")
                    ),
                    None,
                )
            index = pick(key, CategoricalDistribution(list(range(len(value)))), known)
            option = value[index]
            if isinstance(option, dict):  # a nested space: NNI's {"_name": ..., inner...}
                inner = {k: v for k, v in option.items() if k != "_name"}
                nested = convert(inner, pick, old if given is not None else None, f"{key}/{index}/")
                params[name] = {"_name": option.get("_name", index), **nested}
            else:
                params[name] = option
            continue
        if kind in UNBOUNDED:
            raise SpaceError(
                f"{key}: _type {kind!r} is unbounded; Optuna's samplers take bounded ranges "
                "(uniform, loguniform, randint, choice and their q-forms)"
            )
        if not isinstance(value, list) or len(value) < 2:
            raise SpaceError(f"{key}: {kind} needs [low, high], got {value!r}")
        low, high = float(value[0]), float(value[1])
        known = float(old) if given is not None and old is not None else None
        if kind == "randint":
            lo, hi = int(value[0]), int(value[1]) - 1  # NNI's randint excludes high
            if hi < lo:
                raise SpaceError(f"{key}: randint needs low < high, got {value!r}")
            params[name] = int(
                pick(key, IntDistribution(lo, hi), None if known is None else int(known))
            )
        elif kind in ("uniform", "quniform", "loguniform", "qloguniform"):
            log_scale = kind.endswith("loguniform")
            if not low < high or (log_scale and low <= 0):
                raise SpaceError(f"{key}: {kind} needs 0 < low < high for log, low < high else")
            x = pick(key, FloatDistribution(low, high, log=log_scale), known)
            if kind.startswith("q"):
                q = float(value[2]) if len(value) > 2 else 1.0
                x = min(max(round(x / q) * q, low), high)  # NNI's rounding
            params[name] = float(x)
        else:
            raise SpaceError(f"{key}: _type {kind!r} is not one NNI defines")
    return params


def suggest(trial, name: str, dist):
    """trial.suggest_* for a distribution (Optuna's public API)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


# ---------------------------------------------------------------- objectives


def objectives_of(optimize_mode: str, objectives, directions) -> Objectives:
    """nnisuite.analysis.direction's objectives, its errors as ArgsError."""
    try:
        return direction.objectives_of(optimize_mode, objectives, directions)
    except direction.ObjectiveError as exc:
        raise ArgsError(str(exc)) from None


def check_args(sampler: str, n_objectives: int, seed) -> None:
    """ArgsError for a sampler, objective count and seed OptunaTuner cannot run with."""
    if sampler not in SAMPLERS:
        raise ArgsError(f"sampler {sampler!r} unknown; choose one of {', '.join(SAMPLERS)}")
    if sampler in SINGLE_ONLY and n_objectives > 1:
        raise ArgsError(f"sampler {sampler!r} takes one objective; for several use nsgaii or motpe")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ArgsError(f"seed must be an integer, got {seed!r}")


def make_sampler(name: str, seed, n_objectives: int, args: dict):
    import optuna

    s = optuna.samplers
    check_args(name, n_objectives, seed)
    args = dict(args or {})
    if name in ("tpe", "motpe"):
        args = {"multivariate": True, "group": True, "constant_liar": True} | args
        return s.TPESampler(seed=seed, **args)
    if name == "cmaes":  # its warning per categorical parameter per trial: one line instead
        args = {"warn_independent_sampling": False} | args
        return s.CmaEsSampler(seed=seed, **args)
    if name == "gp":
        return s.GPSampler(seed=seed, **args)
    if name == "qmc":
        return s.QMCSampler(seed=seed, **({"scramble": True} | args))
    if name == "random":
        return s.RandomSampler(seed=seed, **args)
    return s.NSGAIISampler(seed=seed, **args)


# ---------------------------------------------------------------- the tuner


class OptunaTuner(Tuner):
    def __init__(
        self,
        sampler: str = "tpe",
        optimize_mode: str = "maximize",
        seed: int | None = None,
        objectives: list | None = None,
        directions: list | None = None,
        sampler_args: dict | None = None,
    ):
        import warnings

        import optuna

        self.objectives = objectives_of(optimize_mode, objectives, directions)
        if sampler_args is not None and not isinstance(sampler_args, dict):
            raise ArgsError(f"sampler_args must be a mapping, got {sampler_args!r}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        to_nni_log()  # Optuna's warnings go to the dispatcher's log, not the user's terminal
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.sampler_name = sampler
        try:
            self.sampler = make_sampler(sampler, seed, len(self.objectives.keys), sampler_args)
        except TypeError as exc:  # a sampler_args key its constructor does not take
            raise ArgsError(f"sampler_args for {sampler}: {exc}") from None
        self.study = optuna.create_study(
            directions=self.objectives.directions, sampler=self.sampler
        )
        self.space: dict = {}
        self.running: dict = {}  # NNI parameter id -> Optuna trial, until told
        self.event: str | None = None  # the end event NNI's dispatcher is handling (below)
        remember_end_events()

    # NNI's Tuner interface
    def update_search_space(self, search_space):
        def probe(name, dist, known):
            return dist.to_external_repr(0) if hasattr(dist, "choices") else dist.low

        convert(search_space, probe)  # refuses what Optuna cannot sample, naming it
        self.space = search_space
        if self.sampler_name == "cmaes":
            found = [n for n, spec in search_space.items() if spec.get("_type") == "choice"]
            if found:  # info: NNI's dispatcher.log has it; a simulation of 100 runs does not
                log.info(
                    "cmaes: %s sampled independently at random beside CMA-ES (categorical: "
                    "Optuna's rule)",
                    ", ".join(found),
                )

    def generate_parameters(self, parameter_id, **kwargs):
        trial = self.study.ask()
        params = convert(self.space, lambda name, dist, _: suggest(trial, name, dist))
        self.running[parameter_id] = trial
        return params

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        import optuna

        trial = self.running.pop(parameter_id, None)
        if trial is None:
            return  # not ours (customized) or already told
        values = self.objectives.values(value)
        if values is None:
            log.warning(
                "trial %s: final result %r lacks a finite %s: told FAIL",
                parameter_id,
                value,
                " / ".join(self.objectives.keys),
            )
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        self.study.tell(trial, values if len(values) > 1 else values[0])
        log.info("parameter id %s told: %s", parameter_id, json.dumps(values))

    def trial_end(self, parameter_id, success, **kwargs):
        from optuna.trial import TrialState

        event, self.event = self.event, None
        trial = self.running.get(parameter_id)
        if trial is None:
            return
        if success:
            return  # its final may still be on its way (NNI stores them unordered)
        self.running.pop(parameter_id)
        state = TrialState.PRUNED if event == EARLY_STOPPED else TrialState.FAIL
        self.study.tell(trial, state=state)
        log.info("parameter id %s told: %s (NNI: %s)", parameter_id, state.name, event)

    def import_data(self, data):
        import optuna

        added = 0
        for entry in data or []:
            params = entry.get("parameter") if isinstance(entry, dict) else None
            values = self.objectives.values(entry.get("value")) if params else None
            if values is None:
                continue
            chosen, dists = {}, {}

            def given(name, dist, known, chosen=chosen, dists=dists):
                chosen[name], dists[name] = known, dist
                return known

            try:
                convert(self.space, given, params)
                frozen = optuna.trial.create_trial(  # ValueError: a value outside the space
                    params=chosen,
                    distributions=dists,
                    **({"values": values} if len(values) > 1 else {"value": values[0]}),
                )
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("import_data: skipped %r (%s)", params, exc)
                continue
            self.study.add_trial(frozen)
            added += 1
        log.info("import_data: %d of %d earlier trials added", added, len(data or []))


def to_nni_log() -> None:
    """Optuna's logger writes where NNI's dispatcher does (its handler on the root logger:
    log/dispatcher.log): Optuna's own handler wrote its warnings (CMA-ES sampling a categorical
    at random, each trial) to the stderr the dispatcher shares with the user's terminal."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def remember_end_events() -> None:
    """Wrap NNI's MsgDispatcher.handle_trial_end (once per process) so that an OptunaTuner
    hears the end event (EARLY_STOPPED, FAILED, ...) before NNI calls its trial_end."""
    try:
        from nni.runtime.msg_dispatcher import MsgDispatcher
    except ImportError:  # pragma: no cover - NNI without its dispatcher
        return
    original = MsgDispatcher.handle_trial_end
    if getattr(original, "nnisuite_wrapped", False):
        return

    def handle_trial_end(self, data):
        heard(self, data)  # looked up at each call: the wrapper is installed once per process
        return original(self, data)

    handle_trial_end.nnisuite_wrapped = True
    handle_trial_end.nni_original = original
    MsgDispatcher.handle_trial_end = handle_trial_end


def heard(dispatcher, data) -> None:
    """An OptunaTuner behind NNI's `dispatcher` takes note of a trial's end event, on the thread
    that calls its trial_end next."""
    from nnisuite.nni_patches.dispatcher import tells_tuner

    tuner = getattr(dispatcher, "tuner", None)
    if isinstance(tuner, OptunaTuner) and isinstance(data, dict) and tells_tuner(data):
        tuner.event = data.get("event")


def validate_class_args(**args) -> None:
    """ArgsError (one line) for classArgs OptunaTuner would refuse: for nnisuite.config.validate."""
    known = {"sampler", "optimize_mode", "seed", "objectives", "directions", "sampler_args"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ArgsError(f"OptunaTuner has no argument {unknown[0]!r}; it takes {sorted(known)}")
    objectives = objectives_of(
        args.get("optimize_mode", "maximize"), args.get("objectives"), args.get("directions")
    )
    check_args(args.get("sampler", "tpe"), len(objectives.keys), args.get("seed"))
