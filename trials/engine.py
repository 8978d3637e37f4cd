"""The one training engine: train_epoch / evaluate / fit, shared by every trial, NAS and tests.

    result = fit(model, data, FitConfig(epochs=5, lr=0.05), on_epoch=print)
    result.final   # {"default": val accuracy, "test_accuracy", ..., "diverged": False}

Batches are index slices of in-memory tensors (no DataLoader). A run whose loss turns NaN or
infinite stops, goes back to the weights of its last finite epoch, and says `diverged`; every
number it returns is finite. `restore_best` ends on the weights of the epoch with the best
validation accuracy (one copy of the weights per improvement): the final's validation and test
figures are that epoch's, `restored_epoch` says which; `best_epoch` is recorded either way.
`schedule` "cosine" sets each epoch's learning rate (epoch_lr); `weight_decay` is torch.optim's.
The final also carries what the model costs (nnisuite.models.costs: parameters, latency per sample
at batch 1 and 256 and the threads it was timed with).

Fast path, chosen visibly: a ReLU MLP under plain SGD trains with nnisuite.trials.fused's epoch (the
same mathematics without autograd, 2.2x faster here) and evaluates with its fused forward.
`FitConfig.fused`: None chooses it where it applies, False turns it off (`--no-fused`), True
insists (an error where it does not apply); `fast_path()` says which and why, and the result
records it (`FitResult.fused`, the final metrics' `fused`).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from nnisuite.models.costs import measure
from nnisuite.trials.fused import fused_forward, fused_sgd_epoch, fused_supported
from nnisuite.trials.metrics import classification_metrics, confusion_matrix
from nnisuite.trials.params import OPTIMIZERS

EVAL_BATCH = 16384  # a 10,000-sample split in one matmul


@dataclass
class FitConfig:
    epochs: int = 20
    lr: float = 0.001
    batch_size: int = 64
    optimizer: str = "sgd"  # the log's choice; "adam" as an option
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0  # torch.optim's weight_decay (every parameter)
    schedule: str = "constant"  # "cosine": epoch_lr
    restore_best: bool = False  # end on the weights of the best validation epoch
    seed: int = 0
    device: str | None = None  # None: CUDA when available, else CPU
    fused: bool | None = None  # None: the fused ReLU-MLP SGD path where it applies
    resume_from: str | None = None  # a checkpoint folder to continue from (NNI's PBT)
    save_to: str | None = None  # the checkpoint folder to write at the end
    test_each_epoch: bool = False  # also evaluate the test set after every epoch (not timed)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict per finished epoch
    final: dict = field(default_factory=dict)
    diverged: bool = False
    fused: bool = False  # trained and evaluated on nnisuite.trials.fused's path
    resumed_epochs: int = 0  # epochs the loaded checkpoint had trained (0: a fresh start)
    resume_note: str = ""
    best_epoch: int | None = None  # the epoch of the best validation accuracy


def epoch_lr(config: FitConfig, index: int) -> float:
    """The learning rate of the index-th epoch (0-based) of this run: constant, or a cosine
    from lr down towards 0 over config.epochs (set once per epoch)."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * index / config.epochs))
    return config.lr


CHECKPOINT = "model.pt"


def load_checkpoint(folder: str | None, model: nn.Module, optimizer, generator) -> tuple[int, str]:
    """Continue from `folder`/model.pt: weights, optimizer state, the batch-order generator and
    the epoch count. Returns (epochs already trained, what happened). A checkpoint of another
    architecture (PBT may change the widths it hands on) is not loaded: a fresh start."""
    if not folder:
        return 0, ""
    path = os.path.join(folder, CHECKPOINT)
    if not os.path.exists(path):
        return 0, f"no checkpoint in {folder}: a fresh start"
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    current = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state["model"].items()}
    if shapes != {k: tuple(v.shape) for k, v in current.items()}:
        return 0, f"the checkpoint in {folder} is of another architecture: a fresh start"
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return int(state["epochs"]), f"continued from {path} after {state['epochs']} epochs"


def save_checkpoint(folder: str | None, model, optimizer, generator, epochs: int) -> None:
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "generator": generator.get_state(),
        "epochs": epochs,
    }
    tmp = os.path.join(folder, f".{CHECKPOINT}.{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(folder, CHECKPOINT))


def fast_path(config: FitConfig, model: nn.Module) -> tuple[bool, str]:
    """(use nnisuite.trials.fused?, the reason in words)."""
    applies = fused_supported(model) and config.optimizer == "sgd" and config.momentum == 0
    if config.fused is False:
        return False, "off (--no-fused): autograd + torch.optim"
    if applies:
        return (
            True,
            "fused ReLU-MLP SGD epoch and forward (nnisuite.trials.fused; --no-fused turns it off)",
        )
    if not fused_supported(model):
        why = "the model is not a ReLU MLP"
    elif config.optimizer != "sgd":
        why = f"optimizer {config.optimizer}"
    else:
        why = f"SGD with momentum {config.momentum}"
    if config.fused:
        raise ValueError(f"--fused: the fused path needs a ReLU MLP under plain SGD ({why})")
    return False, f"autograd + torch.optim (the fused path does not apply: {why})"


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_optimizer(
    name: str, model: nn.Module, lr: float, momentum: float, weight_decay: float = 0.0
):
    """torch.optim's SGD / Adam."""
    params = model.parameters()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def train_epoch(
    model,
    x,
    y,
    optimizer,
    batch_size: int,
    generator: torch.Generator,
    *,
    fused_lr=None,
    weight_decay: float = 0.0,
) -> float:
    """One pass over (x, y) in a seeded random order; returns the loss averaged over samples.
    `fused_lr`: take nnisuite.trials.fused's epoch at this learning rate (and weight decay) instead
    of `optimizer` (a ReLU MLP under plain SGD: the same maths, 2.2x faster)."""
    if fused_lr is not None:
        return fused_sgd_epoch(model, x, y, fused_lr, batch_size, generator, weight_decay)
    model.train()
    n = len(x)
    perm = torch.randperm(n, generator=generator).to(x.device)
    x, y = x[perm], y[perm]  # one gather per epoch; batches are then contiguous views
    total = torch.zeros((), device=x.device)
    for start in range(0, n, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(xb)
    return float(total) / n


@torch.inference_mode()
def evaluate(model, x, y, num_classes: int, fused: bool | None = None) -> dict[str, float]:
    """Loss (averaged over samples) and accuracy / macro precision, recall, F1 of one split.
    `fused`: the fused forward of a ReLU MLP (None: wherever it applies)."""
    model.eval()
    fused = fused_supported(model) if fused is None else fused
    forward = (lambda xb: fused_forward(model, xb)) if fused else model
    loss_sum = 0.0
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long, device=x.device)
    for start in range(0, len(x), EVAL_BATCH):
        logits = forward(x[start : start + EVAL_BATCH])
        yb = y[start : start + EVAL_BATCH]
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        cm += confusion_matrix(logits.argmax(dim=1), yb, num_classes)
    return {"loss": loss_sum / max(len(x), 1), **classification_metrics(cm)}


def fit(model: nn.Module, data, config: FitConfig, on_epoch: Callable[[dict], None] | None = None):
    """Train `model` on data.train, validate each epoch, test once at the end.

    `on_epoch` receives {"epoch", "default" (validation accuracy), "val_loss", "train_loss",
    "val_precision", "val_recall", "val_f1", "epoch_seconds"} after each finite epoch, and
    with `test_each_epoch` "test_accuracy" and "test_loss" too.
    """
    device = pick_device(config.device)
    model.to(device)
    data = data.to(device)
    fused, _ = fast_path(config, model)
    # no torch.optim object on the fused path: constructing one imports torch._dynamo (0.9 s)
    optimizer = (
        None
        if fused
        else make_optimizer(
            config.optimizer, model, config.lr, config.momentum, config.weight_decay
        )
    )
    generator = torch.Generator().manual_seed(config.seed)
    result = FitResult(fused=fused)
    result.resumed_epochs, result.resume_note = load_checkpoint(
        config.resume_from, model, optimizer, generator
    )
    last_good = copy.deepcopy(model.state_dict())
    best, best_state = -math.inf, None  # restore_best: one copy of the weights per improvement
    train_seconds = 0.0
    if os.environ.get("NNISUITE_FIRST_STEP_PROBE"):  # nnisuite.benchmarks.epoch measures start-up
        print(f"NNISUITE_FIRST_STEP {time.time():.6f}", flush=True)
    first = result.resumed_epochs + 1
    for epoch in range(first, first + config.epochs):
        t0 = time.perf_counter()
        lr = epoch_lr(config, epoch - first)
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        train_loss = train_epoch(
            model,
            data.train_x,
            data.train_y,
            optimizer,
            config.batch_size,
            generator,
            fused_lr=lr if fused else None,
            weight_decay=config.weight_decay,
        )
        val = evaluate(model, data.val_x, data.val_y, data.num_classes, fused)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        if not (math.isfinite(train_loss) and math.isfinite(val["loss"])):
            result.diverged = True
            model.load_state_dict(last_good)
            break
        last_good = copy.deepcopy(model.state_dict())
        if val["accuracy"] > best:
            best, result.best_epoch = val["accuracy"], epoch
            if config.restore_best:
                best_state = last_good
        row = {
            "epoch": epoch,
            "default": val["accuracy"],
            "val_loss": val["loss"],
            "train_loss": train_loss,
            "val_precision": val["precision"],
            "val_recall": val["recall"],
            "val_f1": val["f1"],
            "epoch_seconds": seconds,
        }
        if config.test_each_epoch:  # outside epoch_seconds: a tuned trial does not pay it
            test = evaluate(model, data.test_x, data.test_y, data.num_classes, fused)
            row |= {"test_accuracy": test["accuracy"], "test_loss": test["loss"]}
        result.history.append(row)
        if on_epoch:
            on_epoch(row)
    if best_state is not None:
        model.load_state_dict(best_state)
    val = evaluate(model, data.val_x, data.val_y, data.num_classes, fused)
    test = evaluate(model, data.test_x, data.test_y, data.num_classes, fused)
    total_epochs = result.resumed_epochs + len(result.history)
    save_checkpoint(config.save_to, model, optimizer, generator, total_epochs)
    result.final = {
        "default": val["accuracy"],
        "val_loss": val["loss"],
        "test_accuracy": test["accuracy"],
        "test_precision": test["precision"],
        "test_recall": test["recall"],
        "test_f1": test["f1"],
        "test_loss": test["loss"],
        "epochs": total_epochs,
        "train_seconds": train_seconds,
        "diverged": result.diverged,
        "fused": fused,
    }
    result.final |= measure(model, data.test_x[:1])  # parameters, latency (nnisuite.models.costs)
    if result.best_epoch is not None:
        result.final["best_epoch"] = result.best_epoch
        if best_state is not None:
            result.final["restored_epoch"] = result.best_epoch
    if config.resume_from is not None:
        result.final["resumed_epochs"] = result.resumed_epochs
    return result
