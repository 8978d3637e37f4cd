"""Speed of one training epoch, evaluation and trial start-up: the log's pipeline against
nnisuite's engine, and the engine against the machine's sgemm peak.

    python -m nnisuite.benchmarks.epoch --out runs/bench        # prints bench.md, writes bench.json
    python -m nnisuite.benchmarks.epoch --out DIR --quick         # harness check (the test suite)
    python -m nnisuite.benchmarks.epoch --out DIR --device cuda   # on a GPU

The log's pipeline, rebuilt: torchvision's FashionMNIST with a per-sample ToTensor transform
through a DataLoader (batch 64, shuffled); evaluation fills a confusion matrix with a Python loop
over the samples of each batch and averages the per-batch metrics. Same data, model (the log's
784-128-256-10 MLP), batch size and optimiser (SGD) for both; each figure is the median of
--repeats runs in this process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnisuite.benchmarks.machine import cpu_name
from nnisuite.flags import Parser
from nnisuite.launcher import module_command
from nnisuite.models.mlp import MLP
from nnisuite.outputs import folder_flag
from nnisuite.trials.data import IDX_FILES, find_idx_files, load_dataset, write_idx
from nnisuite.trials.engine import FitConfig, evaluate, fast_path, make_optimizer, train_epoch

GFLOP_CONFIGS = [(bs, widths) for widths in ((128, 256), (1024, 1024)) for bs in (32, 64, 256)]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------- data for both pipelines


def prepare_data(quick: bool, workdir: Path):
    """(tensor dataset for ours, torchvision root for the log's, description). Fashion-MNIST
    when present; otherwise MNIST-shaped random data written as IDX files."""
    files = find_idx_files("fashion-mnist", None)
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    if files and not quick:
        for key, path in files.items():
            target = raw / IDX_FILES[key]
            with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as src:
                target.write_bytes(src.read())
        source = f"Fashion-MNIST ({files['train_images'].parent})"
        data = load_dataset("fashion-mnist")
    else:
        n_train, n_test = (12_000, 500) if quick else (60_000, 10_000)
        rng = np.random.default_rng(0)
        arrays = {
            "train_images": rng.integers(0, 256, (n_train, 28, 28)),
            "train_labels": rng.integers(0, 10, n_train),
            "test_images": rng.integers(0, 256, (n_test, 28, 28)),
            "test_labels": rng.integers(0, 10, n_test),
        }
        for key, array in arrays.items():
            write_idx(raw / IDX_FILES[key], array.astype(np.uint8))
        source = "MNIST-shaped random data" + (" (quick: small)" if quick else "")
        data = load_dataset("mnist", raw)
    return data, workdir, source


# ---------------------------------------------------------------- the log's pipeline


def seed_loaders(root: Path, batch_size: int):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.ToTensor()
    train = datasets.FashionMNIST(str(root), train=True, transform=tf, download=False)
    test = datasets.FashionMNIST(str(root), train=False, transform=tf, download=False)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(test, batch_size=batch_size, shuffle=False),
    )


def seed_train_epoch(model, loader, optimizer):
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x.view(x.shape[0], -1)), y)
        loss.backward()
        optimizer.step()


def seed_evaluate(model, loader, num_classes=10):
    """The log's evaluation: per batch, a confusion matrix filled sample by sample in Python,
    per-batch accuracy / precision / recall / F1 averaged over batches."""
    model.eval()
    scores = []
    with torch.no_grad():
        for x, y in loader:
            pred = model(x.view(x.shape[0], -1)).argmax(1)
            cm = np.zeros((num_classes, num_classes))
            for t, p in zip(y.tolist(), pred.tolist()):
                cm[t][p] += 1
            tp = np.diag(cm)
            precision = np.mean(tp / np.maximum(cm.sum(0), 1))
            recall = np.mean(tp / np.maximum(cm.sum(1), 1))
            f1 = 2 * precision * recall / max(precision + recall, 1e-12)
            scores.append((tp.sum() / cm.sum(), precision, recall, f1))
    return np.mean(scores, axis=0)


# ---------------------------------------------------------------- start-up


def startup_seconds(command: list[str], env: dict, marker: str) -> float:
    """Seconds from launching `command` to the time it prints after `marker`."""
    t0 = time.time()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600).stdout
    line = next(line for line in out.splitlines() if line.startswith(marker))
    return float(line.split()[-1]) - t0


def seed_startup_command(root: Path) -> list[str]:
    code = (
        "import time, torch, torchvision, nni\n"
        "from torchvision import datasets, transforms\n"
        "from torch.utils.data import DataLoader\n"
        f"ds = datasets.FashionMNIST({str(root)!r}, train=True, transform=transforms.ToTensor())\n"
        "x, y = next(iter(DataLoader(ds, batch_size=64, shuffle=True)))\n"
        "print('FIRST_STEP', time.time(), flush=True)\n"
    )
    return [sys.executable, "-c", code]


# ---------------------------------------------------------------- GFLOP/s


def step_flops(batch: int, sizes: list[int]) -> float:
    """Matmul FLOPs of one training step: forward 2*b*in*out per layer; backward the same for
    the weight gradient and, except the first layer, for the input gradient."""
    layers = list(zip(sizes, sizes[1:]))
    forward = sum(2 * batch * i * o for i, o in layers)
    return forward + forward + (forward - 2 * batch * layers[0][0] * layers[0][1])


def sgemm_gflops(device, n: int, repeats: int) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    sync(device)
    t = median_time(lambda: (torch.mm(a, b), sync(device)), repeats)
    return 2 * n**3 / t / 1e9


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_epoch(model, lr: float, fused: bool | None):
    """One training epoch as a trial takes it: (x, y, batch, generator) -> loss, on the path
    nnisuite.trials.engine.fast_path picks (the fused one unless `fused` is False)."""
    use_fused, _ = fast_path(FitConfig(lr=lr, fused=fused), model)
    if use_fused:
        return lambda x, y, b, g: train_epoch(model, x, y, None, b, g, fused_lr=lr)
    opt = make_optimizer("sgd", model, lr, 0.0)
    return lambda x, y, b, g: train_epoch(model, x, y, opt, b, g)


def engine_gflops(device, batch: int, widths, n_samples: int, repeats: int, fused) -> float:
    torch.manual_seed(0)
    model = MLP(784, list(widths), 10).to(device)
    x = torch.randn(n_samples, 784, device=device)
    y = torch.randint(0, 10, (n_samples,), device=device)
    epoch = engine_epoch(model, 0.01, fused)
    gen = torch.Generator().manual_seed(0)
    epoch(x, y, batch, gen)  # warm-up
    sync(device)
    t = median_time(lambda: (epoch(x, y, batch, gen), sync(device)), repeats)
    steps = n_samples // batch
    flops = steps * step_flops(batch, [784, *widths, 10])
    if n_samples % batch:
        flops += step_flops(n_samples % batch, [784, *widths, 10])
    return flops / t / 1e9


# ---------------------------------------------------------------- the benchmark


def measure_log_pipeline(root: Path, repeats: int) -> dict:
    """The log's DataLoader pipeline, on the CPU (the DataLoader is its cost)."""
    train_loader, test_loader = seed_loaders(root, 64)
    torch.manual_seed(0)
    model = MLP(784, [128, 256], 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return {
        "seed_train_s": median_time(lambda: seed_train_epoch(model, train_loader, opt), repeats),
        "seed_eval_s": median_time(lambda: seed_evaluate(model, test_loader), repeats),
    }


def measure_engine(data, device, repeats: int, fused: bool | None) -> dict:
    """nnisuite's engine on the same model, data, batch size and optimiser."""
    data = data.to(device)
    torch.manual_seed(0)
    model = MLP(784, [128, 256], 10).to(device)
    epoch = engine_epoch(model, 0.01, fused)
    gen = torch.Generator().manual_seed(0)
    train_x = torch.cat([data.train_x, data.val_x])  # the log trained on all 60,000
    train_y = torch.cat([data.train_y, data.val_y])
    use_fused, why = fast_path(FitConfig(lr=0.01, fused=fused), model)

    def train():
        epoch(train_x, train_y, 64, gen)
        sync(device)

    def test():
        evaluate(model, data.test_x, data.test_y, 10, use_fused)
        sync(device)

    return {
        "path": why,
        "ours_train_s": median_time(train, repeats),
        "ours_eval_s": median_time(test, max(repeats, 9)),  # 10 ms each: more runs
    }


def measure_gflops(device, quick: bool, repeats: int, fused: bool | None) -> dict:
    """Training GFLOP/s of the engine at several batch sizes and widths, against sgemm."""
    peak = sgemm_gflops(device, 512 if quick else 2048, repeats)
    n = 2_048 if quick else 20_480
    configs = []
    for batch, widths in GFLOP_CONFIGS:
        g = engine_gflops(device, batch, widths, n, repeats, fused)
        configs.append(
            {"batch_size": batch, "widths": list(widths), "gflops": g, "peak_fraction": g / peak}
        )
    return {"sgemm_gflops": peak, "configs": configs}


def measure_startup(root: Path, workdir: Path, source: str, repeats: int, quick: bool) -> dict:
    """Seconds from launching a trial to its first training step, dataset cache warm (--quick,
    a harness check: no warm-up run)."""
    env = os.environ | {"NNISUITE_FIRST_STEP_PROBE": "1"}
    trial = module_command("nnisuite.trials.mlp", "--epochs", "1", "--out", str(workdir / "trial"))
    trial += (
        ["--dataset", "fashion-mnist"]
        if "Fashion" in source
        else ["--dataset", "mnist", "--data-dir", str(root / "FashionMNIST" / "raw")]
    )
    if not quick:
        subprocess.run(trial, env=env, capture_output=True, timeout=600)  # warm cache
    ours = statistics.median(
        startup_seconds(trial, env, "NNISUITE_FIRST_STEP") for _ in range(repeats)
    )
    seed = statistics.median(
        startup_seconds(seed_startup_command(root), env, "FIRST_STEP") for _ in range(repeats)
    )
    return {"ours_startup_s": ours, "seed_startup_s": seed, "startup_ratio": ours / seed}


def run(
    out: Path, quick: bool, repeats: int, device_name: str | None, fused: bool | None = None
) -> dict:
    device = torch.device(device_name or "cpu")
    workdir = Path(tempfile.mkdtemp(prefix="nnisuite-bench-"))
    try:
        data, root, source = prepare_data(quick, workdir)
        results: dict = {
            "data": source,
            "device": str(device),
            "repeats": repeats,
            "torch_threads": torch.get_num_threads(),
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "quick": quick,
            # the log's pipeline trains on the whole training set; nnisuite on its training
            # split (the rest is validation); both evaluate the test set
            "log_train_samples": int(len(data.train_x) + len(data.val_x)),
            "ours_train_samples": int(len(data.train_x)),
            "test_samples": int(len(data.test_x)),
        }
        print(f"nnisuite.benchmarks.epoch: {source}, {device}", file=sys.stderr, flush=True)
        results |= measure_log_pipeline(root, repeats)
        results |= measure_engine(data, device, repeats, fused)
        print(
            f"nnisuite.benchmarks.epoch: engine path: {results['path']}",
            file=sys.stderr,
            flush=True,
        )
        results["train_speedup"] = results["seed_train_s"] / results["ours_train_s"]
        results["eval_speedup"] = results["seed_eval_s"] / results["ours_eval_s"]
        results |= measure_gflops(device, quick, repeats, fused)
        results |= measure_startup(root, workdir, source, repeats, quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(results))
    return results


def markdown(r: dict) -> str:
    lines = [
        f"Data: {r['data']}; device {r['device']}; torch {r['torch']}, "
        f"{r['torch_threads']} threads; CPU {r['cpu']}; median of {r['repeats']}.",
        f"Engine path: {r['path']}.",
        "",
        "| measure | the log's pipeline | nnisuite | speed-up |",
        "|---|---|---|---|",
        f"| train epoch (log {r['log_train_samples']:,} / nnisuite {r['ours_train_samples']:,} "
        f"samples, batch 64) | {r['seed_train_s']:.2f} s | "
        f"{r['ours_train_s']:.3f} s | {r['train_speedup']:.1f}x |",
        f"| evaluation ({r['test_samples']:,} samples) | {r['seed_eval_s']:.3f} s | "
        f"{r['ours_eval_s']:.4f} s | {r['eval_speedup']:.0f}x |",
        f"| trial start-up to first step | {r['seed_startup_s']:.2f} s | "
        f"{r['ours_startup_s']:.2f} s | {1 / r['startup_ratio']:.1f}x |",
        "",
        f"sgemm peak (torch.mm): {r['sgemm_gflops']:.1f} GFLOP/s",
        "",
        "| batch | widths | training GFLOP/s | fraction of sgemm peak |",
        "|---|---|---|---|",
    ]
    for c in r["configs"]:
        lines.append(
            f"| {c['batch_size']} | {'-'.join(map(str, c['widths']))} | "
            f"{c['gflops']:.1f} | {c['peak_fraction']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.epoch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for bench.json and bench.md"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small data, 1 repeat (unless --repeats): harness check",
    )
    p.add_argument(
        "--repeats", type=int, help="runs per figure; the median counts (default 3; --quick: 1)"
    )
    p.add_argument("--device", help="cpu (default), cuda or cuda:N (a GPU must be visible)")
    p.add_argument(
        "--fused",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the engine's fused ReLU-MLP path (default: on where it applies)",
    )
    return p


def main(argv=None) -> int:
    from nnisuite.benchmarks.report import out_folder
    from nnisuite.trials.params import DEVICE

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    repeats = args.repeats or (1 if args.quick else 3)
    if args.device is not None and not DEVICE.fullmatch(args.device):
        parser.error(f"--device {args.device!r} unknown; use cpu, cuda or cuda:N")
    if (args.device or "").startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no GPU visible here (a benchmark never falls back)")
    out_folder(parser, args.out)
    results = run(Path(args.out), args.quick, repeats, args.device, args.fused)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
