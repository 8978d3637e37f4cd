"""NNI databases written row by row in NNI 3.0's own schema (nnisuite.benchmarks.nni_db.SCHEMA), for
tests of what the readers make of patterns a real manager writes (a resume's repeated ids, a
trial stopped as it exited, any metric or space a user's trial may produce).

    db = Database(tmp_path, "exp1", config)
    db.start(1000, "A", seq=0, parameter_id=0, parameters={"x": 0.5})
    db.metric(1500, "A", 0, "FINAL", {"default": 0.75})
    db.event(1600, "A", "SUCCEEDED", seq=0)
    path = db.write()
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nnisuite.benchmarks.nni_db import SCHEMA, twice


class Database:
    def __init__(self, root: Path, exp_id: str, config: dict, start_ms: int = 1_790_000_000_000):
        self.path = Path(root) / exp_id / "db" / "nni.sqlite"
        self.exp_id, self.config, self.start_ms = exp_id, config, start_ms
        self.events: list[tuple] = []
        self.metrics: list[tuple] = []
        self.end_ms: int | None = None

    def event(self, ts: int, trial: str, event: str, data=None, seq: int | None = None) -> None:
        text = data if data is None or isinstance(data, str) else json.dumps(data)
        self.events.append((self.start_ms + ts, trial, event, text, None, seq, None, "local"))

    def start(self, ts: int, trial: str, seq: int, parameter_id, parameters: dict) -> None:
        """The RUNNING event with the trial's parameter record, as NNI's local service writes."""
        record = {
            "parameter_id": parameter_id,
            "parameter_source": "algorithm",
            "parameters": parameters,
            "parameter_index": 0,
        }
        self.event(ts, trial, "RUNNING", record, seq)

    def metric(self, ts: int, trial: str, parameter_id, kind: str, value, step: int = 0) -> None:
        data = twice(value)
        self.metrics.append((self.start_ms + ts, trial, str(parameter_id), kind, step, data))

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        last = max([e[0] for e in self.events] + [m[0] for m in self.metrics] + [self.start_ms])
        with sqlite3.connect(self.path) as conn:
            conn.executescript(SCHEMA)
            conn.execute(
                "insert into ExperimentProfile values (?,?,?,?,?,?,?,?)",
                (
                    json.dumps(self.config),
                    self.exp_id,
                    (last - self.start_ms) // 1000,
                    self.start_ms,
                    self.end_ms if self.end_ms is not None else last,
                    None,
                    len({e[1] for e in self.events}),
                    1,
                ),
            )
            conn.executemany("insert into TrialJobEvent values (?,?,?,?,?,?,?,?)", self.events)
            conn.executemany("insert into MetricData values (?,?,?,?,?,?)", self.metrics)
        return self.path
