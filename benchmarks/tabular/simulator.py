"""A simulated NNI: NNI 3.0's own dispatcher (the tuner and assessor classes a plan names, or an
advisor: Hyperband, BOHB) driven in this process by a simulated manager against a table, with a
simulated clock.

    sim = Simulation(run_config(plan, "tpe", 3, None), plan["base"], table, seed=3)
    result = sim.run()      # the trials in order: parameters, cell, epochs run, final, end time

What is simulated is NNI 3.0's manager loop for the local training service (nnimanager.js,
manageTrials: every 0.5 s it counts the trials that ended, asks the dispatcher for as many new
ones, and submits waiting trials into free slots; a dispatcher's answer is submitted at the next
poll), the dispatcher's input (the search space; requests; each trial's per-epoch intermediate
results at the simulated time they would arrive; its final result; its end), and the kill an
assessor asks for (the trial ends EARLY_STOPPED at that epoch, without a final result, as in
NNI). The dispatcher itself is NNI's (nni.runtime.msg_dispatcher.MsgDispatcher, its channel the
unittest one, what it sends captured), so tuners and assessors see what they would see.

A trial's time: the table's start-up seconds of its cell (NNI's duration minus its epochs) and
its epochs' seconds; its values: the table's curve of the cell its parameters snap to (each
value to the nearest grid value, lr on a log scale: the snap is counted and reported), for a
training seed drawn per trial from the table's seeds by the run's own random generator
(a trial's training seed is not the tuner's to choose), or with trial_seed="study" the run's
own seed for every trial, as nnisuite.study.repeat's trials train (the seed must be in the table).
With a time budget (max_seconds, `run --max-seconds`) the study stops at that simulated second:
trials still running then are cut (USER_CANCELED, no final result), so variants are compared at
equal simulated wall-clock, whatever number of trials each fits in.
A `TRIAL_BUDGET` (Hyperband, BOHB) is the number of epochs, as nnisuite's trials read it: the
first epochs of the cell's curve, which is what training that many epochs gives under a
constant learning rate, the 3.17 trial's.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from nnisuite.benchmarks.tabular.table import Table, TableError
from nnisuite.config.experiment import TrialCommand

POLL_S = 0.5  # nnimanager.js: pollInterval of the local training service (NNI 3.0)
BUDGET = "TRIAL_BUDGET"  # nnisuite.trials.runner's: Hyperband's and BOHB's epochs


class SimulationError(ValueError):
    """A run the simulator cannot do (a tuner it cannot drive, epochs the table lacks)."""


@dataclass
class SimTrial:
    job_id: str
    parameter_id: object
    parameters: dict  # as the tuner gave them (TRIAL_BUDGET taken out)
    cell: tuple
    seed: int  # the table's training seed it got
    epochs: int
    start: float
    sequence: int
    snapped: bool = False  # a value moved to the grid
    status: str = "RUNNING"
    end: float | None = None
    reported: int = 0  # intermediate results reported
    final: dict | None = None


@dataclass
class Result:
    trials: list[SimTrial] = field(default_factory=list)
    wall_s: float = 0.0
    snapped: int = 0  # trials whose parameters were moved to the grid


@contextlib.contextmanager
def unittest_channel():
    """Advisors build their command channel from NNI's environment: point it at the unittest
    one (no connection) while they are built."""
    from nni.runtime import msg_dispatcher_base

    saved = msg_dispatcher_base.dispatcher_env_vars
    msg_dispatcher_base.dispatcher_env_vars = saved._replace(
        NNI_TUNER_COMMAND_CHANNEL="ws://_unittest_"
    )
    try:
        yield
    finally:
        msg_dispatcher_base.dispatcher_env_vars = saved


def create(algo: dict, kind: str, base: Path):
    """A tuner / assessor / advisor as NNI's dispatcher process builds it (nni.__main__), a
    custom class's codeDirectory relative to the plan's base experiment file."""
    from nni.__main__ import _create_algo

    algo = dict(algo)
    if algo.get("codeDirectory"):
        code = Path(algo["codeDirectory"]).expanduser()
        algo["codeDirectory"] = str(code if code.is_absolute() else (base.parent / code).resolve())
    with unittest_channel():
        return _create_algo(algo, kind)


class Simulation:
    def __init__(
        self,
        config: dict,
        base: Path,
        table: Table,
        seed: int,
        tag: str = "sim",
        trial_seed: str = "draw",
        max_seconds: float | None = None,
    ):
        from nni.runtime.msg_dispatcher import MsgDispatcher
        from nni.runtime.msg_dispatcher_base import MsgDispatcherBase

        from nnisuite.config.search_space import load_space

        self.table, self.rng, self.tag = table, random.Random(seed), tag
        self.max_seconds = max_seconds  # a time budget: the study stops there
        self.study_seed = None
        if trial_seed == "study":  # every trial trains with the run's seed, as repeat's do
            if seed not in table.seeds:
                raise SimulationError(
                    f"--trial-seed study: seed {seed} is not one of the table's {table.seeds}"
                )
            self.study_seed = seed
        elif trial_seed != "draw":
            raise SimulationError(f"trial_seed {trial_seed!r}: draw or study")
        name = str(config.get("tuner", {}).get("name") or config["tuner"].get("className"))
        if name.lower().endswith("pbt"):
            raise SimulationError("PBT trains on from its trials' checkpoints: not in a table")
        self.space, _, problems = load_space(config, Path(base))
        if self.space is None:
            raise SimulationError(f"no search space: {problems}")
        unknown = sorted(set(self.space) - set(table.parameters))
        if unknown:
            raise SimulationError(
                f"the table has no parameter {unknown} (it has {table.parameters})"
            )
        self.concurrency = int(config.get("trialConcurrency") or 1)
        self.max_trials = int(config.get("maxTrialNumber") or 0)
        if self.max_trials < 1:
            raise SimulationError("maxTrialNumber is needed: the number of trials to simulate")
        command = TrialCommand.parse(config.get("trialCommand", ""))
        self.epochs = epochs_of(command, table.epochs)
        check_table(table, command.flag("--dataset"))
        tuner = create(config["tuner"], "tuner", Path(base))
        if isinstance(tuner, MsgDispatcherBase):  # an advisor: it is the dispatcher
            self.dispatcher = tuner
        else:
            assessor = (
                create(config["assessor"], "assessor", Path(base))
                if config.get("assessor")
                else None
            )
            self.dispatcher = MsgDispatcher("ws://_unittest_", tuner, assessor)
        self.dispatcher.send = self.on_command
        self.arriving: list[dict] = []  # the dispatcher's new trials, submitted at the next poll
        self.waiting: list[dict] = []
        self.no_more = False
        self.killed: list[str] = []
        self.events: list = []  # (time, order, trial, kind)
        self.order = 0
        self.now = 0.0

    # ------------------------------------------------------------ the dispatcher's commands
    def on_command(self, kind, data) -> None:
        name = getattr(kind, "name", str(kind))
        if name == "NewTrialJob":
            self.arriving.append(json.loads(data))
        elif name == "NoMoreTrialJobs":
            self.no_more = True
        elif name == "KillTrialJob":
            self.killed.append(json.loads(data))

    # ------------------------------------------------------------------------- the clock
    def push(self, time: float, trial: SimTrial, kind: str, epoch: int = 0) -> None:
        self.order += 1
        heapq.heappush(self.events, (time, self.order, kind, epoch, trial))

    def start(self, form: dict, result: Result) -> None:
        params = dict(form["parameters"])
        epochs = self.epochs
        if BUDGET in params:
            epochs = max(1, round(float(params.pop(BUDGET))))
            if epochs > self.table.epochs:
                raise SimulationError(
                    f"a budget of {epochs} epochs: the table has {self.table.epochs}"
                )
        cell = self.table.key(params)
        snapped = any(params[p] != v for p, v in zip(self.table.parameters, cell) if p in params)
        trial = SimTrial(
            job_id=f"{self.tag}-{len(result.trials)}",  # NNI's dispatcher keeps ids globally
            parameter_id=form["parameter_id"],
            parameters=params,
            cell=cell,
            seed=self.rng.choice(self.table.seeds) if self.study_seed is None else self.study_seed,
            epochs=epochs,
            start=self.now,
            sequence=len(result.trials),
            snapped=snapped,
        )
        result.trials.append(trial)
        result.snapped += snapped
        curve = self.table.rows[(cell, trial.seed)]
        t = self.now + self.table.startup[(cell, trial.seed)]
        for epoch in range(1, epochs + 1):
            t += curve[epoch - 1]["epoch_s"]
            self.push(t, trial, "metric", epoch)
        self.push(t, trial, "end", epochs)

    def deliver(self, kind: str, epoch: int, trial: SimTrial) -> None:
        if trial.status != "RUNNING":
            return  # killed: its later events never happen
        curve = self.table.rows[(trial.cell, trial.seed)]
        row = curve[epoch - 1]
        value = {
            "default": row["val_accuracy"],
            "val_loss": row["val_loss"],
            "test_accuracy": row["test_accuracy"],
            "test_loss": row["test_loss"],
        }
        if kind == "metric":
            trial.reported += 1
            self.dispatcher.handle_report_metric_data(
                {
                    "parameter_id": trial.parameter_id,
                    "trial_job_id": trial.job_id,
                    "type": "PERIODICAL",
                    "sequence": epoch - 1,
                    "value": json.dumps(value),
                }
            )
            if trial.job_id in self.killed:  # the assessor's verdict: NNI kills it
                self.finish(trial, "EARLY_STOPPED")
            return
        trial.final = {"default": row["val_accuracy"], "test_accuracy": row["test_accuracy"]}
        self.dispatcher.handle_report_metric_data(
            {
                "parameter_id": trial.parameter_id,
                "trial_job_id": trial.job_id,
                "type": "FINAL",
                "sequence": 0,
                "value": json.dumps(trial.final),
            }
        )
        self.finish(trial, "SUCCEEDED")

    def finish(self, trial: SimTrial, event: str) -> None:
        trial.status, trial.end = event, self.now
        self.dispatcher.handle_trial_end(
            {
                "trial_job_id": trial.job_id,
                "event": event,
                "hyper_params": json.dumps({"parameter_id": trial.parameter_id}),
            }
        )

    # ------------------------------------------------------------------- the manager loop
    def run(self) -> Result:
        result = Result()
        self.dispatcher.handle_initialize(self.space)
        self.dispatcher.handle_request_trial_jobs(self.concurrency)
        submitted, ended_before, tick = 0, 0, 0.0
        while True:
            limit = tick if self.max_seconds is None else min(tick, self.max_seconds)
            while self.events and self.events[0][0] <= limit:
                time, _, kind, epoch, trial = heapq.heappop(self.events)
                self.now = time
                self.deliver(kind, epoch, trial)
            if self.max_seconds is not None and tick >= self.max_seconds:
                for trial in result.trials:  # cut at the budget: no final ever arrives
                    if trial.status == "RUNNING":
                        trial.status, trial.end = "USER_CANCELED", self.max_seconds
                break
            self.now = tick
            self.waiting += self.arriving
            self.arriving = []
            ended = sum(t.status != "RUNNING" for t in result.trials)
            finished_now, ended_before = ended - ended_before, ended
            running = len(result.trials) - ended
            if submitted >= self.max_trials:
                if running == 0:
                    break
            else:
                if finished_now:
                    self.dispatcher.handle_request_trial_jobs(finished_now)
                while self.waiting and running < self.concurrency and submitted < self.max_trials:
                    self.start(self.waiting.pop(0), result)
                    submitted += 1
                    running += 1
                if running == 0 and not self.waiting and not self.arriving and self.no_more:
                    break  # the tuner has nothing more (GridSearch at the end of its grid)
            if running == 0 and not self.waiting and not self.arriving and not self.events:
                break  # nothing will happen again (NNI would wait here for ever)
            tick += POLL_S
        ends = [t.end for t in result.trials if t.end is not None]
        result.wall_s = max(ends) if ends else 0.0
        return result


def epochs_of(command: TrialCommand, table_epochs: int) -> int:
    """The trial command's --epochs (the table's when it has none); SimulationError beyond."""
    epochs = int(command.flag("--epochs") or table_epochs)
    if epochs > table_epochs:
        raise SimulationError(f"--epochs {epochs}: the table has {table_epochs} epochs")
    return epochs


def check_table(table: Table, dataset: str | None) -> None:
    if dataset and dataset != table.meta["dataset"]:
        raise TableError(f"the plan trains on {dataset}; the table is of {table.meta['dataset']}")
