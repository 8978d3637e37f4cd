"""Trade-offs: the trials no other trial beats on both the objective and a cost.

    fronts = trade_offs(trials, maximize=True)          # one Front per cost the trials report
    front.members, front.hypervolume, front.reference   # the non-dominated trials, the HV
    hypervolume(points, reference, maximize=True)       # 2-D, exact

The objective is NNI's `default` (maximized or minimized as the experiment says); the costs are
nnisuite.models.costs' keys (parameters, latency per sample at batch 1 and 256, KV-cache bytes per
token), all minimized, each present in every SUCCEEDED trial's final or left out.

A trial is on the front when no other trial is at least as good on both and better on one
(equal points are all kept). The hypervolume is the area the front dominates up to a reference
point, stated with it: cost 1.1 x the largest cost seen, objective 0 for a maximized metric in
[0, 1] (accuracy), else the worst value seen. It is reported as a share of the box between the
reference and the ideal corner (cost 0, objective 1 or the best value seen), so 1.0 would be a
free model that is always right. Comparing runs (nnisuite.study.repeat) takes one reference for
all of them (`common_reference`), else their hypervolumes would not be comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nnisuite.analysis.direction import usable

REFERENCE_MARGIN = 1.1  # the reference cost: 1.1 x the largest cost seen
# the log's own 3.17 choice (nnisuite.trials.mlp.MLPParams' defaults), marked where a space has it
LOG_CHOICE = {"features1": 128, "features2": 256}


@dataclass
class Reference:
    objective: float
    cost: float
    ideal: float  # the objective's best possible (1 for accuracy) or best seen

    def box(self) -> float:
        return abs(self.ideal - self.objective) * self.cost


@dataclass
class Front:
    cost: str  # a nnisuite.models.costs key
    maximize: bool
    points: list[tuple[float, float]]  # (objective, cost) of every trial considered
    members: list[int]  # indices into points, by cost ascending
    reference: Reference
    hypervolume: float  # a share of reference.box()
    trial_ids: list[str] = field(default_factory=list)


def dominates(a: tuple[float, float], b: tuple[float, float], maximize: bool) -> bool:
    """`a` at least as good as `b` on the objective and the cost, and better on one."""
    better_obj = a[0] >= b[0] if maximize else a[0] <= b[0]
    strictly = (a[0] > b[0] if maximize else a[0] < b[0]) or a[1] < b[1]
    return better_obj and a[1] <= b[1] and strictly


def front(points: list[tuple[float, float]], maximize: bool = True) -> list[int]:
    """Indices of the non-dominated points (objective, cost), cost ascending then best first."""
    sign = -1 if maximize else 1
    order = sorted(range(len(points)), key=lambda i: (points[i][1], sign * points[i][0]))
    kept: list[int] = []
    best = None  # best objective among cheaper-or-equal points kept so far
    for i in order:
        value = points[i][0]
        if best is None or (value > best if maximize else value < best):
            kept.append(i)
            best = value
        elif value == best and points[kept[-1]] == points[i]:
            kept.append(i)  # an equal point: neither dominates the other
    return kept


def hypervolume(
    points: list[tuple[float, float]], reference: tuple[float, float], maximize: bool = True
) -> float:
    """The area dominated by `points` (objective, cost) and bounded by `reference`
    (objective, cost): exact for two objectives. Points beyond the reference add nothing."""
    ref_obj, ref_cost = reference
    # to minimisation of both: a = -objective when maximizing
    flip = -1.0 if maximize else 1.0
    pts = sorted(
        (p[1], flip * p[0]) for p in points if p[1] < ref_cost and flip * p[0] < flip * ref_obj
    )
    area, best = 0.0, flip * ref_obj
    for i, (cost, a) in enumerate(pts):
        best = min(best, a)
        next_cost = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        area += (next_cost - cost) * (flip * ref_obj - best)
    return area


def reference_for(values: list[float], costs: list[float], maximize: bool) -> Reference:
    accuracy_like = maximize and all(0.0 <= v <= 1.0 for v in values)
    if accuracy_like:
        objective, ideal = 0.0, 1.0
    else:
        objective = min(values) if maximize else max(values)
        ideal = max(values) if maximize else min(values)
    return Reference(objective, REFERENCE_MARGIN * max(costs), ideal)


def common_reference(fronts: list[Front]) -> Reference | None:
    """One reference for several runs' fronts of the same cost (nnisuite.study.repeat)."""
    if not fronts:
        return None
    values = [p[0] for f in fronts for p in f.points]
    costs = [p[1] for f in fronts for p in f.points]
    return reference_for(values, costs, fronts[0].maximize)


def share(points, reference: Reference, maximize: bool) -> float:
    box = reference.box()
    hv = hypervolume(points, (reference.objective, reference.cost), maximize)
    return hv / box if box > 0 else math.nan


def build_front(
    cost: str,
    points: list[tuple[float, float]],
    maximize: bool,
    trial_ids: list[str] | None = None,
    reference: Reference | None = None,
) -> Front:
    members = front(points, maximize)
    if reference is None:
        reference = reference_for([p[0] for p in points], [p[1] for p in points], maximize)
    hv = share([points[i] for i in members], reference, maximize)
    return Front(cost, maximize, points, members, reference, hv, list(trial_ids or []))


def trade_offs(trials, maximize: bool = True, reference: dict | None = None) -> list[Front]:
    """One Front per cost every SUCCEEDED trial with a numeric `default` reports.
    `reference`: {cost: Reference} to use instead of each front's own."""
    from nnisuite.models.costs import present

    done = [t for t in trials if t.status == "SUCCEEDED" and usable(t.final.get("default"))]
    fronts = []
    for cost in present(t.final for t in done):
        points = [(float(t.final["default"]), float(t.final[cost])) for t in done]
        ref = (reference or {}).get(cost)
        fronts.append(build_front(cost, points, maximize, [t.trial_id for t in done], ref))
    return fronts


def log_choice(parameters: dict) -> bool:
    """Whether a trial ran the log's own 3.17 architecture (only where the space has its keys)."""
    return all(parameters.get(k) == v for k, v in LOG_CHOICE.items())


# ---------------------------------------------------------------- tables


def front_rows(fronts: list[Front], trials, params: list[str], chosen=frozenset()):
    """pareto.csv: one row per front member and cost (cost, trial_id, sequence, default, value,
    log_choice, the parameters; a parameter named like one of those gets `param.<name>`), cost
    ascending within each cost. `trials`: the export's trials table
    (nnisuite.analysis.tables.trials_table); `chosen`: the ids of trials that ran the log's
    choice."""
    import pandas as pd

    own = ["cost", "trial_id", "sequence", "default", "value", "log_choice"]
    columns = {(f"param.{p}" if p in own else p): p for p in params}
    by_id = trials.set_index("trial_id", drop=False)
    rows = []
    for f in fronts:
        for i in f.members:
            row = by_id.loc[f.trial_ids[i]]
            rows.append(
                {
                    "cost": f.cost,
                    "trial_id": f.trial_ids[i],
                    "sequence": row["sequence"],
                    "default": f.points[i][0],
                    "value": f.points[i][1],
                    "log_choice": f.trial_ids[i] in chosen,
                    **{c: row[p] for c, p in columns.items()},
                }
            )
    return pd.DataFrame(rows, columns=own + list(columns))


def markdown(fronts: list[Front], table, label: str) -> str:
    """The summary's trade-off section: per cost, the front's trials and the hypervolume."""
    from nnisuite.analysis.tables import markdown_table
    from nnisuite.models.costs import label as cost_label
    from nnisuite.models.costs import shown

    if not fronts:
        return ""
    lines = [
        "## Trade-offs (Pareto fronts)",
        "",
        f"The trials no other trial beats on both {label} and a cost (pareto.csv, "
        "pareto_<cost>.png). Hypervolume: the share of the box between the reference point and "
        "(cost 0, best possible) that the front dominates (nnisuite.analysis.pareto).",
    ]
    for f in fronts:
        ref = f.reference
        part = table[table["cost"] == f.cost].drop(columns=["cost"])
        part = part.assign(value=[shown(f.cost, v) for v in part["value"]])
        part = part.rename(columns={"value": cost_label(f.cost), "default": label})
        if not part["log_choice"].any():
            part = part.drop(columns=["log_choice"])
        lines += [
            "",
            f"### {cost_label(f.cost)}: {len(f.members)} of {len(f.points)} trials on the front",
            "",
            f"- hypervolume {f.hypervolume:.4f} (reference: {label} {ref.objective:g}, "
            f"{cost_label(f.cost)} {shown(f.cost, ref.cost):.4g})",
            "",
            markdown_table(part),
        ]
    return "\n".join(lines)
