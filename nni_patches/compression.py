"""NNI 3.0's model compression as nnisuite calls it: a pruner's masks, then ModelSpeedup, with
NNI's defects met on the way worked around or refused, never reached silently.

    with quiet(log_file):                      # NNI's INFO lines and prints go to the file
        widths = prune(model, "l1", 0.75, example, keep=["net.4"])
        widths = prune(model, "agp", 0.9, example, keep=["net.4"], training=Training(...))

Two kinds of pruner (PRUNERS): l1, l2 and fpgm score each unit from the trained weights alone
(one shot, no data); taylor, agp and linear need training steps (TRAINED): Taylor scores each
unit by its weights times their gradients summed over the steps, AGP and Linear raise an L1
pruner's sparsity from 0 to the goal in 10 steps as the model trains with the masks applied
(AGP fast first, cubic; Linear evenly). Their steps are the study's recipe (`Training`: its
optimizer, learning rate, batch size; the seed sets the batch order), run through NNI's
TorchEvaluator.

- ModelSpeedup traces the model with NNI's own concrete tracer, which fails on every model
  with this PyTorch (`AttributeError: 'NoneType' object has no attribute 'startswith'`,
  nni/common/concrete_trace_utils/concrete_tracer.py:958; microsoft/nni#5768, open): here it is
  handed `torch.fx.symbolic_trace`'s graph instead (`graph_module=`), which it accepts.
- Speedup removes a pruned unit; it does not fold what that unit still outputs into the next
  layer. Exact only where the activation maps 0 to 0 (ReLU, tanh, GELU); after a sigmoid
  (0 -> 0.5) NNI's speedup changes what the model computes without a word: refused
  (`zero_preserving`).
- LevelPruner masks single weights and speedup then keeps every weight (nothing gets smaller
  or faster): not offered (PRUNERS holds the channel pruners only).
- NNI's quantizers (QAT, Ptq, Lsq, LsqPlus, DoReFa, BNN) simulate quantization in float32 (the
  saved model is larger, not smaller; DoReFa turns every parameter NaN after one step, LsqPlus
  at 8 bits gives chance accuracy): not offered; nnisuite's int8 is PyTorch's dynamic
  quantization (nnisuite.deploy.compress).
- A speedup logs ~40 INFO lines on NNI's logger and mask_conflict.py:231 prints `0 Filter` with
  a bare print: `quiet` sends both to a log file, and drops the FutureWarnings NNI's speedup
  module raises about its own use of torch's pytree API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import warnings
from pathlib import Path

# --pruner -> NNI 3.0's class in nni.compression.pruning (one score per output unit: the rows
# of a Linear layer's weight, its L1 or L2 norm, FPGM's distance to the geometric median,
# Taylor's first-order estimate of the loss change; AGP and Linear schedule an L1 pruner)
PRUNERS = {
    "l1": "L1NormPruner",
    "l2": "L2NormPruner",
    "fpgm": "FPGMPruner",
    "taylor": "TaylorPruner",
    "agp": "AGPPruner",
    "linear": "LinearPruner",
}
TRAINED = ("taylor", "agp", "linear")  # the pruners that need training steps (`Training`)
SCHEDULE_TIMES = 10  # AGP / Linear: sparsity raised this many times over the steps
NNI_5768 = "microsoft/nni#5768"


class CompressionError(ValueError):
    """A model or a request NNI's compression would get wrong: one line, exit 2."""


@contextlib.contextmanager
def quiet(log_file: Path):
    """NNI's logger and anything printed to stdout go to `log_file` (appended) while the block
    runs; NNI's own handlers are put back afterwards."""
    nni_logger = logging.getLogger("nni")
    handlers, propagate = list(nni_logger.handlers), nni_logger.propagate
    with open(log_file, "a") as log:
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s %(message)s"))
        for h in handlers:
            nni_logger.removeHandler(h)
        nni_logger.addHandler(handler)
        nni_logger.propagate = False
        try:
            # NNI's speedup imports register torch pytree nodes with deprecated calls: warnings
            # about NNI's internals, not about the user's model
            with contextlib.redirect_stdout(log), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning, module="nni")
                warnings.filterwarnings("ignore", message=".*already registered as pytree node")
                yield
        finally:
            sys.stdout.flush()
            nni_logger.removeHandler(handler)
            for h in handlers:
                nni_logger.addHandler(h)
            nni_logger.propagate = propagate


def zero_preserving(model) -> None:
    """CompressionError unless every activation of `model` maps 0 to 0 (see the module's
    docstring: NNI's speedup drops a pruned unit's output instead of folding it)."""
    import torch

    for name, module in model.named_modules():
        if list(module.children()) or any(True for _ in module.parameters(recurse=False)):
            continue  # containers and layers with weights: not activations
        try:
            at_zero = module(torch.zeros(1, 1))
        except Exception:  # noqa: BLE001 - not an elementwise module (Flatten, Dropout, ...)
            continue
        if isinstance(at_zero, torch.Tensor) and at_zero.numel() == 1 and float(at_zero) != 0.0:
            raise CompressionError(
                f"{name} ({type(module).__name__}) maps 0 to {float(at_zero):g}: NNI's speedup "
                "would drop what each pruned unit still outputs (it does not fold it into the "
                "next layer's bias) and change the model's answers: refused (ReLU, tanh and "
                "GELU models can be pruned)"
            )


@dataclasses.dataclass
class Training:
    """The steps a TRAINED pruner takes: the study's recipe on its training split (in-memory
    tensors, already standardised), in a seeded order."""

    x: object  # training inputs (torch tensor)
    y: object  # their labels
    batch_size: int
    optimizer: str  # "sgd" or "adam", as nnisuite.trials.engine
    lr: float
    momentum: float
    weight_decay: float
    steps: int  # optimizer steps in all
    seed: int  # the batch order

    def evaluator(self, model):
        """NNI's TorchEvaluator over these steps: NNI re-creates the optimizer from its trace
        on the model it wraps, and hooks its step (Taylor's scores, AGP's schedule)."""
        import nni
        import torch
        from nni.compression import TorchEvaluator
        from torch.nn import functional as F

        if self.optimizer == "sgd":
            optimizer = nni.trace(torch.optim.SGD)(
                model.parameters(), lr=self.lr, momentum=self.momentum,
                weight_decay=self.weight_decay,
            )  # fmt: skip
        else:
            optimizer = nni.trace(torch.optim.Adam)(
                model.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
        return TorchEvaluator(
            self.loop, optimizer, lambda batch, m: F.cross_entropy(m(batch[0]), batch[1])
        )

    def loop(self, model, optimizers, training_step, lr_schedulers=None, max_steps=None,
             max_epochs=None):  # fmt: skip
        """NNI's training_func: `max_steps` (or self.steps) steps over shuffled batches."""
        import torch

        limit, done = max_steps or self.steps, 0
        generator = torch.Generator().manual_seed(self.seed)
        model.train()
        while done < limit:
            order = torch.randperm(len(self.x), generator=generator)
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                loss = training_step((self.x[batch], self.y[batch]), model)
                optimizers.zero_grad(set_to_none=True)
                loss.backward()
                optimizers.step()
                done += 1
                if done >= limit:
                    return


def make_pruner(model, pruner: str, config: list[dict], training: Training | None):
    """(NNI's pruner of `pruner` on `model`, the steps its compress() takes or None)."""
    from nni.compression import pruning

    if pruner not in TRAINED:
        return getattr(pruning, PRUNERS[pruner])(model, config), None
    if training is None or training.steps < 1:
        raise CompressionError(f"--pruner {pruner} needs training steps (--prune-epochs)")
    evaluator = training.evaluator(model)
    if pruner == "taylor":  # scores summed over every step; masks at the last one
        return pruning.TaylorPruner(model, config, evaluator, training_steps=training.steps), None
    times = min(SCHEDULE_TIMES, training.steps)
    interval = training.steps // times
    scheduled = getattr(pruning, PRUNERS[pruner])
    return scheduled(
        pruning.L1NormPruner(model, config), interval, times, evaluator
    ), interval * times


def prune(
    model, pruner: str, sparsity: float, example, keep: list[str], training: Training | None = None
) -> dict[str, int]:
    """Prune `sparsity` of the output units of every Linear layer of `model` but those named in
    `keep` (the classifier head) by the units' `pruner` score (TRAINED pruners: after or during
    `training`'s steps, which also train the model), then shrink the model in place with NNI's
    ModelSpeedup over torch.fx's graph. Returns {layer: units kept}."""
    import torch
    from nni.compression.speedup import ModelSpeedup

    if pruner not in PRUNERS:
        raise CompressionError(f"--pruner {pruner}: choose one of {', '.join(PRUNERS)}")
    if not 0.0 < sparsity < 1.0:
        raise CompressionError(f"--sparsity {sparsity}: must be between 0 and 1 (exclusive)")
    zero_preserving(model)
    config = [{"op_types": ["Linear"], "sparse_ratio": sparsity, "exclude_op_names": keep}]
    chosen, steps = make_pruner(model, pruner, config, training)
    _, masks = chosen.compress() if steps is None else chosen.compress(steps, None)
    chosen.unwrap_model()
    model.eval()
    graph = torch.fx.symbolic_trace(model)  # NNI's own tracer fails here: microsoft/nni#5768
    ModelSpeedup(model, example, masks, graph_module=graph).speedup_model()  # needs autograd
    return widths(model, keep)


def widths(model, keep: list[str]) -> dict[str, int]:
    """{Linear layer of `model` not in `keep`: its output units}."""
    import torch

    return {
        name: module.out_features
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name not in keep
    }
