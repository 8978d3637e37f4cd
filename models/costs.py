"""What a model costs, beside how accurate it is: the keys every trial's final result carries.

    from nnisuite.models.costs import measure, COSTS
    final |= measure(model, example)      # parameters, latency at batch 1 and 256, threads

One module names them (the exporter, the Pareto fronts, the Optuna tuner and bridge read
these names; NNI's `default` stays the accuracy):

- `parameters`: the numbers in the model (its weights and biases);
- `latency_s_batch1`, `latency_s_batch256`: seconds per sample of one forward pass on this
  machine's CPU (or the trial's device), the median of LATENCY_REPEATS timed calls after
  LATENCY_WARMUP untimed ones, on random input of the model's input shape;
- `latency_threads`: torch's intra-op threads while timing (latency depends on it);
- `kv_cache_bytes_per_token`: attention models only (keys and values of every block, float32),
  reported by the NAS attention space's `describe()`.

Every cost is minimized.
"""

from __future__ import annotations

import statistics
import time

PARAMETERS = "parameters"
LATENCY_BATCHES = (1, 256)
LATENCY_WARMUP = 5
LATENCY_REPEATS = 30  # timed calls per batch size; the median is reported
LATENCY_THREADS = "latency_threads"
KV_CACHE = "kv_cache_bytes_per_token"


def latency_key(batch: int) -> str:
    return f"latency_s_batch{batch}"


# measured times: they differ between two runs of the same trial (nothing else does)
TIMINGS = tuple(latency_key(b) for b in LATENCY_BATCHES)

# key -> (what it is, unit shown in tables, scale from the stored unit to the shown one)
COSTS = {
    PARAMETERS: ("parameters", "", 1.0),
    **{latency_key(b): (f"latency per sample at batch {b}", "us", 1e6) for b in LATENCY_BATCHES},
    KV_CACHE: ("KV-cache bytes per token", "B", 1.0),
}


def label(key: str) -> str:
    """A cost's name for a table or an axis, with its unit."""
    what, unit, _ = COSTS[key]
    return f"{what} ({unit})" if unit else what


def shown(key: str, value: float) -> float:
    return value * COSTS[key][2]


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def latency(model, example, batches=LATENCY_BATCHES) -> dict[str, float]:
    """Seconds per sample at each batch size: `example` is one input (or a batch of them) whose
    shape after the batch dimension and dtype the timed input takes (random values). The model
    is timed as it is (in eval mode after engine.evaluate; torch.export's modules have no
    train/eval switch)."""
    import torch

    result = {}
    for batch in batches:
        shape = (batch, *example.shape[1:])
        if example.dtype.is_floating_point:
            x = torch.randn(shape, dtype=example.dtype, device=example.device)
        else:
            x = torch.randint(0, 256, shape, dtype=example.dtype, device=example.device)
        with torch.inference_mode():
            for _ in range(LATENCY_WARMUP):
                model(x)
            times = []
            for _ in range(LATENCY_REPEATS):
                t0 = time.perf_counter()
                model(x)
                if x.is_cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        result[latency_key(batch)] = statistics.median(times) / batch
    result[LATENCY_THREADS] = torch.get_num_threads()
    return result


def measure(model, example) -> dict:
    """Every cost a trial reports for `model` (KV cache comes from the model's describe())."""
    return {PARAMETERS: count_parameters(model), **latency(model, example)}


def present(finals) -> list[str]:
    """The cost keys every one of `finals` (dicts) has as a finite number, in COSTS' order."""
    import math

    finals = list(finals)
    if not finals:
        return []

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    return [k for k in COSTS if all(number(f.get(k)) for f in finals)]
