"""An NNI tuner that hands out a listed set of grid cells, in order, once each: what a table
build gives NNI, so that a build run again continues with the cells still missing (NNI's own
GridSearch always walks the whole product, and its resume cannot add trials beyond
maxTrialNumber to redo the ones a stop cut short).

    tuner:
      className: nnisuite.benchmarks.tabular.cells_tuner.CellsTuner
      codeDirectory: <any folder>
      classArgs: {cells_file: /abs/path/cells.json}     # a JSON list of parameter dicts
"""

from __future__ import annotations

import json
from pathlib import Path

from nni import NoMoreTrialError
from nni.tuner import Tuner


def validate_class_args(cells_file=None, **others) -> None:
    """What nnisuite.config.validate asks of a custom tuner's classArgs."""
    if others:
        raise ValueError(f"CellsTuner takes only cells_file, not {sorted(others)}")
    if not cells_file or not Path(cells_file).is_file():
        raise ValueError(f"cells_file {cells_file!r}: no such file")


class CellsTuner(Tuner):
    def __init__(self, cells_file: str):
        self.cells = json.loads(Path(cells_file).read_text())
        self.next = 0

    def update_search_space(self, search_space) -> None:
        pass  # the cells are the search

    def generate_parameters(self, parameter_id, **kwargs) -> dict:
        if self.next >= len(self.cells):
            raise NoMoreTrialError("every listed cell was handed out")
        self.next += 1
        return self.cells[self.next - 1]

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs) -> None:
        pass

    def import_data(self, data) -> None:
        done = {json.dumps(d["parameter"], sort_keys=True) for d in data}
        self.cells = [c for c in self.cells if json.dumps(c, sort_keys=True) not in done]
