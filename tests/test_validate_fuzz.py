"""Fuzzing the validator with mutants of every shipped experiment and NAS settings file (each
key dropped, each key given wrong values of several types, tuner / assessor names and classArgs
misspelt): every mutant ends with exit 0 or 2, never a traceback, and every mutant that exits 0
is one NNI itself accepts (its config validation, the tuner and assessor built from classArgs,
the tuner given the search space, the NAS space built). No manager is started."""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import os
from collections import Counter
from pathlib import Path

import pytest
import yaml

from nnisuite.config.experiment import get_key, load_yaml, to_nni_config
from nnisuite.config.plan import is_plan
from nnisuite.config.validate import is_nas_settings, main, validate
from tests.helpers.paths import REPO

# yaml.safe_dump through libyaml: the same documents, written ~10x faster
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

SHIPPED = sorted(p for p in (REPO / "experiments").glob("*.yaml") if not p.name.startswith("."))
VALUES = [-1, 0, 1.5, "x", "", [1], {}, None, True]


def misspell(word: str) -> list[str]:
    return [word + "e", word[:-1], "x" + word] if len(word) > 2 else [word + "x"]


def mutants(raw: dict) -> list[tuple[str, dict]]:
    out = []
    for key in raw:
        dropped = {k: v for k, v in raw.items() if k != key}
        out.append((f"drop {key}", dropped))
        for value in VALUES:
            out.append((f"{key}={value!r}", {**raw, key: value}))
        for typo in misspell(str(key)):
            out.append((f"key {typo}", {(typo if k == key else k): v for k, v in raw.items()}))
    for kind in ("tuner", "assessor"):
        spec = raw.get(kind)
        if not isinstance(spec, dict):
            continue
        for field in ("name", "className"):  # a built-in, or a custom class (Optuna's tuner)
            if isinstance(spec.get(field), str):
                for typo in misspell(spec[field]):
                    out.append((f"{kind} {typo}", {**raw, kind: {**spec, field: typo}}))
        for key in list(spec):
            for typo in misspell(key):
                bad = {(typo if k == key else k): v for k, v in spec.items()}
                out.append((f"{kind} key {typo}", {**raw, kind: bad}))
        args = spec.get("classArgs") or {}
        for arg in args:
            for typo in misspell(arg):
                bad_args = {(typo if k == arg else k): v for k, v in args.items()}
                out.append((f"{kind} arg {typo}", {**raw, kind: {**spec, "classArgs": bad_args}}))
            for value in (-1, "x", [1], None):
                bad_args = {**args, arg: value}
                out.append(
                    (f"{kind} {arg}={value!r}", {**raw, kind: {**spec, "classArgs": bad_args}})
                )
        out.append((f"{kind} classArgs=[1]", {**raw, kind: {**spec, "classArgs": [1]}}))
        if "optimize_mode" in args:
            bad_args = {**args, "optimize_mode": "maximum"}
            out.append((f"{kind} maximum", {**raw, kind: {**spec, "classArgs": bad_args}}))
    for name, variant in (raw.get("variants") or {}).items():  # a study of studies
        tuner = variant.get("tuner") if isinstance(variant, dict) else None
        if isinstance(tuner, dict) and isinstance(tuner.get("name"), str):
            for typo in misspell(tuner["name"]):
                bad = {**variant, "tuner": {**tuner, "name": typo}}
                out.append(
                    (
                        f"variant {name} tuner {typo}",
                        {**raw, "variants": {**raw["variants"], name: bad}},
                    )
                )
    service = raw.get("trainingService")
    if isinstance(service, dict):
        for typo in misspell(service["platform"]):
            out.append(
                (f"platform {typo}", {**raw, "trainingService": {**service, "platform": typo}})
            )
    return [(label, copy.deepcopy(m)) for label, m in out]


@contextlib.contextmanager
def offline_dispatcher():
    """An advisor built without a manager: NNI's own unit-test channel, which never connects."""
    from nni.runtime import msg_dispatcher_base as base

    saved = base.dispatcher_env_vars
    base.dispatcher_env_vars = saved._replace(NNI_TUNER_COMMAND_CHANNEL="ws://_unittest_")
    try:
        yield
    finally:
        base.dispatcher_env_vars = saved


ANSWERS: dict = {}  # NNI's answer per (config, file): a plan's mutant repeats most variants


def nni_accepts(raw: dict, path: Path) -> bool:
    """What NNI does with an experiment file before and at start, without a manager (asked once
    per distinct config and file: the answer depends on nothing else)."""
    key = (json.dumps(raw, sort_keys=True, default=str), str(path))
    if key not in ANSWERS:
        ANSWERS[key] = ask_nni(raw, path)
    return ANSWERS[key]


def ask_nni(raw: dict, path: Path) -> bool:
    from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
    from nni.tools.package_utils.tuner_factory import create_builtin_class_instance

    from nnisuite.config.search_space import load_space

    logging.disable(logging.CRITICAL)
    checkpoints = os.environ.setdefault("NNI_CHECKPOINT_DIRECTORY", "/tmp/nni-fuzz-checkpoints")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            to_nni_config(raw, path).validate()
            space, _, _ = load_space(raw, path)
            for kind, algo_type in (("tuner", "tuners"), ("assessor", "assessors")):
                _, spec = get_key(raw, kind)
                if spec and spec.get("className"):  # a custom class (nnisuite.nni_patches.tuners)
                    module, _, cls = spec["className"].rpartition(".")
                    with offline_dispatcher():  # Hyperband, BOHB are advisors
                        algo = getattr(importlib.import_module(module), cls)(
                            **dict(spec.get("classArgs") or {})
                        )
                    if kind == "tuner" and not isinstance(algo, MsgDispatcherBase):
                        algo.update_search_space(space)  # NNI's dispatcher: on initialize
                elif spec:
                    algo = create_builtin_class_instance(
                        spec["name"], dict(spec.get("classArgs") or {}), algo_type
                    )
                    if kind == "tuner":
                        algo.update_search_space(space)
    except Exception:  # noqa: BLE001 - any failure is NNI rejecting the file
        return False
    finally:
        logging.disable(logging.NOTSET)
        if checkpoints == "/tmp/nni-fuzz-checkpoints":  # the dispatcher's variable, for PBT
            del os.environ["NNI_CHECKPOINT_DIRECTORY"]
    return True


def plan_accepts(path: Path) -> bool:
    """A study-of-studies file: NNI accepts the run of every variant."""
    from nnisuite.config.plan import RepeatError, is_nas, load_plan, nas_settings, run_config

    try:
        plan = load_plan(path)
        if is_nas(plan):
            return all(nas_accepts(nas_settings(plan, v, 0)) for v in plan["variants"])
        base = Path(plan["base"])
        return all(nni_accepts(run_config(plan, v, 0, None), base) for v in plan["variants"])
    except (RepeatError, OSError):
        return False


def nas_accepts(raw: dict) -> bool:
    from nnisuite.config.nas_settings import settings_from
    from nnisuite.nas.study import build_experiment

    try:
        build_experiment(settings_from(raw), None)
    except Exception:  # noqa: BLE001
        return False
    return True


def mirror(tmp_path: Path) -> Path:
    """A folder whose relative paths resolve as the repo's do (links to every top-level entry,
    experiments/ a real folder of links), so mutants written there, never in the repo, read
    ../search_spaces and friends as the originals do."""
    root = tmp_path / "repo"
    (root / "experiments").mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in ("experiments", ".git", ".venv"):
            (root / entry.name).symlink_to(entry)
    for entry in (REPO / "experiments").iterdir():
        (root / "experiments" / entry.name).symlink_to(entry)
    return root / "experiments"


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_mutants_never_crash_and_nothing_nni_rejects_passes(path, tmp_path, capsys):
    base = load_yaml(path)
    outcomes: Counter = Counter()
    accepted_but_rejected = []
    folder = mirror(tmp_path)
    for label, raw in mutants(base):
        mutant = folder / f"fuzz-{path.stem}.yaml"  # in a mirror of experiments/: same paths
        try:
            mutant.write_text(yaml.dump(raw, Dumper=DUMPER) if isinstance(raw, dict) else "")
            try:
                code = main([str(mutant)])
            except SystemExit as exc:  # argparse
                code = exc.code
            capsys.readouterr()
            assert code in (0, 2), f"{label}: exit {code}"
            outcomes[code] += 1
            if code == 0:
                if is_plan(raw):
                    ok = plan_accepts(mutant)
                elif is_nas_settings(raw):
                    ok = nas_accepts(raw)
                else:
                    ok = nni_accepts(raw, mutant)
                if not ok:
                    accepted_but_rejected.append(label)
        finally:
            mutant.unlink(missing_ok=True)
    total = sum(outcomes.values())
    print(f"{path.name}: {total} mutants, exit 0: {outcomes[0]}, exit 2: {outcomes[2]}")
    assert not accepted_but_rejected, f"accepted, but NNI rejects: {accepted_but_rejected}"
    assert outcomes[2] > 0


def test_the_mutants_include_the_reported_cases():
    base = load_yaml(REPO / "experiments" / "mlp_tpe_medianstop.yaml")
    labels = {label for label, _ in mutants(base)}
    for case in (
        "trialCommand=-1",
        "trialCommand=[1]",
        "trialConcurrency=-1",
        "maxTrialNumber=-1",
        "tuner TPEe",
        "assessor Medianstope",
        "tuner arg optimize_modee",
        "tuner maximum",
    ):
        assert case in labels, case


def test_shipped_files_pass():
    for path in SHIPPED:
        problems = [p for p in validate(path) if p.severity != "note"]  # TPE's start-up notes
        if path.name == "mlp_tpe_remote.yaml":  # a template: its SSH key is the user's
            assert len(problems) == 1 and "SSH key file" in problems[0].message
        else:
            assert problems == [], path
