"""A NAS study on NNI: the depth space, the evaluator, a strategy, one NNI session, the table.

    code = run(settings, port=None, experiment_dir=None, out=None)  # what `nnisuite nas` does

The session (start, progress, watchdog, Ctrl-C, stop, export) is nnisuite.study.manager's, the
same as an HPO study's. NNI 3.0 runs the strategy inside `NasExperiment.start`, so the start
runs in the background and the main thread watches. At the end `out` holds the exporter's
files plus trials.csv (one row per trial: depth, seed, default, test_accuracy, parameters,
...), nas_table.md (mean +- std over seeds) and settings.json (every setting, the strategy's
seed included).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from nnisuite.config.nas_settings import IMAGE_SHAPES, INPUT_SIZES, max_trials, space_size
from nnisuite.launcher import CLIENT_MODULE, module_command
from nnisuite.launcher.server import PRELOAD
from nnisuite.nni_patches.binding import private_prefix
from nnisuite.outputs import save_csv, write_text
from nnisuite.study.manager import Study, quoted, run_study

# A NAS trial (`python -m nni.nas.execution.training_service trial`) imports NNI's NAS
# execution, which imports PyTorch Lightning (and with it torchmetrics, torchvision, sympy,
# matplotlib): 4.4 s of CPU per trial here when imported after the warm launcher's fork. The
# launcher imports it once instead (not nni's own modules: they read the trial's variables).
NAS_PRELOAD = (*PRELOAD, "pytorch_lightning")


def make_strategy(name: str, seed: int):
    """NNI's multi-trial strategies. TPE maximizes: NNI's TPE strategy minimizes by default,
    which would search for the worst architecture. optuna_tpe / optuna_gp / optuna_cmaes:
    Optuna's multivariate TPE / GP / CMA-ES (nnisuite.study.optuna_tuner, Optuna's default 10
    random architectures first) in NNI's own HPOTunerStrategy, maximizing. (Every choice of
    these spaces is categorical, which CMA-ES samples independently at random, saying so in the
    log: expect Random.)"""
    from nni.nas import strategy

    if name.startswith("optuna_"):
        from nni.nas.strategy.hpo import HPOTunerStrategy

        from nnisuite.study.optuna_tuner import OptunaTuner

        sampler = name.removeprefix("optuna_")
        if sampler == "cmaes":  # one line here (the tuner silences Optuna's per-trial warning)
            print(
                "nas: CMA-ES samples categorical choices (every choice of this space) "
                "independently at random (Optuna's RandomSampler)",
                file=sys.stderr,
            )
        tuner = OptunaTuner(sampler=sampler, optimize_mode="maximize", seed=seed)
        return HPOTunerStrategy(tuner)
    if name == "grid":
        return strategy.GridSearch(shuffle=False)
    if name == "random":
        return strategy.Random(seed=seed, dedup=True)
    if name == "tpe":
        return strategy.TPE(optimize_mode="maximize", seed=seed)
    return strategy.RegularizedEvolution(population_size=8, sample_size=4, seed=seed)


def build_space(settings: dict):
    """The model space the settings name: the depth MLP or the attention classifier."""
    if settings["space"] == "attention":
        from nnisuite.nas.attention_space import AttentionSpace

        rows, columns = IMAGE_SHAPES[settings["dataset"]]
        return AttentionSpace(rows, columns, 10, int(settings["repeats"]))
    from nnisuite.nas.space import DepthSpace

    return DepthSpace(
        INPUT_SIZES[settings["dataset"]],
        10,
        int(settings["min_depth"]),
        int(settings["max_depth"]),
        int(settings["repeats"]),
        bool(settings["extended"]),
    )


def build_experiment(settings: dict, experiment_dir: str | None, exp_id: str | None = None):
    """The NasExperiment of these settings (a fresh id, or `exp_id` to resume)."""
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment

    from nnisuite.nas.evaluator import evaluate_architecture

    concurrency = int(settings["concurrency"])
    space = build_space(settings)
    evaluator = FunctionalEvaluator(
        evaluate_architecture,
        dataset=settings["dataset"],
        data_dir=settings["data_dir"],
        epochs=int(settings["epochs"]),
        lr=float(settings["lr"]),
        batch_size=int(settings["batch_size"]),
        optimizer=settings["optimizer"],
        momentum=float(settings["momentum"]),
        trial_seeds=int(settings["trial_seeds"]),
        threads=max(1, (os.cpu_count() or 1) // concurrency),
        save=settings["space"]
        == "attention",  # the heatmaps of nnisuite.analysis.attention read it
    )
    strategy = make_strategy(settings["strategy"], int(settings["seed"]))
    exp = NasExperiment(space, evaluator, strategy, id=exp_id)
    exp.config.trial_concurrency = concurrency  # NNI 3.0's NAS default is 1
    # NNI builds the NAS trial command as `{python} -m nni.nas.execution.training_service
    # trial`; through the launcher client the trial forks from the warm launcher.
    exp.config._trial_command_params = {"python": shlex.join(module_command(CLIENT_MODULE))}
    exp.config.max_trial_number = max_trials(settings)
    exp.config.experiment_name = f"nas_{settings['space']}_{settings['dataset']}"
    if experiment_dir:
        exp.config.experiment_working_directory = str(Path(experiment_dir).resolve())
    return exp


def export(study: Study, outcome, settings: dict) -> None:
    """The exporter's files plus trials.csv, nas_table.md and settings.json."""
    from nnisuite.analysis.export import export_experiment
    from nnisuite.analysis.store import ExportError
    from nnisuite.nas.table import TRIAL_COLUMNS, attention_table, depth_table, table_markdown

    exp, out = study.exp, study.out
    try:
        result = export_experiment(exp.id, out, study.exp_dir, live=False)
    except ExportError as exc:
        print(f"nothing to export: {exc}", file=sys.stderr)
        return
    trials = result.trials
    columns = [c for c in TRIAL_COLUMNS if c in trials] + [
        c for c in trials.columns if c not in TRIAL_COLUMNS
    ]
    save_csv(trials[columns], out / "trials.csv")
    write_text(out / "settings.json", json.dumps(settings, indent=2) + "\n")
    attention = settings["space"] == "attention"
    table = attention_table(trials) if attention else depth_table(trials)
    what = "attention kind, heads, width, depth" if attention else "hidden depth"
    repeats, inside = int(settings["repeats"]), int(settings.get("trial_seeds") or 1)
    seeds = f"{repeats * inside} training seed(s) per architecture"
    if inside > 1:
        seeds += f" ({repeats} trial(s) x {inside} seeds inside each)"
    text = (
        f"# NAS {exp.id}: {what} on {settings['dataset']}, {settings['epochs']} "
        f"epochs, {seeds}, strategy "
        f"{settings['strategy']} (seed {settings['seed']})\n\n" + table_markdown(table) + "\n"
    )
    if attention:
        text += keep_best_model(trials, study, out)
    write_text(out / "nas_table.md", text)
    print(text)
    print(f"files: {out}/ (nas_table.md, trials.csv, settings.json, summary.md, plots)")
    print(
        "the best architecture retrained over seeds, saved with a model card: "
        f"python -m nnisuite.deploy.best {exp.id} --experiment-dir {quoted(study.exp_dir)} "
        f"--out {quoted(out / 'best')}"
    )
    print(
        f"web UI again: {private_prefix()}nnictl view {exp.id} "
        f"--experiment_dir {quoted(study.exp_dir)} --port {study.port}"
    )


def keep_best_model(trials, study: Study, out: Path) -> str:
    """Copy the best trial's saved model to out/best_model.pt (for nnisuite.analysis.attention)."""
    import shutil

    from nnisuite.study.manager import trial_folder

    done = trials[trials["default"].notna()]
    if done.empty:
        return ""
    best = done.sort_values("default", ascending=False).iloc[0]
    source = trial_folder(study.exp_dir, study.exp.id, best["trial_id"]) / "model.pt"
    if not source.is_file():
        return f"\n(the best trial {best['trial_id']} saved no model)\n"
    shutil.copyfile(source, out / "best_model.pt")
    return (
        f"\nBest trial {best['trial_id']} (val {best['default']:.4f}) saved as "
        f"{out / 'best_model.pt'}: nnisuite attention --model {out / 'best_model.pt'}\n"
    )


def run(
    settings: dict,
    port: int | None = None,
    experiment_dir: str | None = None,
    out: str | None = None,
    launcher: bool = True,
    stall_s: float | None = None,
    host: str | None = None,
) -> int:
    exp = build_experiment(settings, experiment_dir)
    budget = max_trials(settings)
    where = (
        "the attention space"
        if settings["space"] == "attention"
        else f"depth {settings['min_depth']}..{settings['max_depth']}"
    )
    study = Study(
        exp,
        port,
        Path(out or f"runs/nas-{exp.id}"),
        budget,
        resume_hint="NNI 3.0 cannot resume a NAS study (nnisuite nas --help says why): run it "
        "again",
        background_start=True,
        expected_trials=min(budget, space_size(settings)),
        host=host,
        preload=NAS_PRELOAD,
        title=f"NAS experiment {exp.id}: {settings['strategy']} over {where} "
        f"x {settings['repeats']} seed(s), {budget} trials, concurrency {settings['concurrency']}",
    )
    return run_study(
        study,
        export=lambda s, o: export(s, o, settings),
        launcher=launcher,
        stall_s=stall_s,
    )
