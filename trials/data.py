"""Datasets as in-memory tensor splits: digits (embedded), MNIST and Fashion-MNIST (IDX files).

    from nnisuite.trials.data import load_dataset
    data = load_dataset("fashion-mnist")          # train 50,000 / val 10,000 / test 10,000
    data.train_x.shape  # (50000, 784) float32, standardised; data.image_shape == (28, 28)

Where the MNIST family is looked for, in order: `data_dir` (the `--data-dir` flag),
`$NNISUITE_DATA`, Debian's `/usr/share/datasets/<name>` (package `dataset-<name>`), and
torchvision's download folder `~/.cache/nnisuite/torchvision` (used, and downloaded into, only
where torchvision is installed and the network allows). Each folder may hold the four IDX files
(raw or `.gz`) directly or under `<name>/`, `<name>/raw`, or torchvision's `MNIST/raw`,
`FashionMNIST/raw`.

Parsing IDX files costs ~1 s per trial, so the parsed uint8 arrays are cached as `.npz` under
`$NNISUITE_CACHE` (default `~/.cache/nnisuite`), keyed by the source files' paths, sizes and
modification times: a changed source makes a new cache entry.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist", "fashion-mnist")
MNIST_FAMILY = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # name -> torchvision folder
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
VALIDATION_SIZE = 10_000  # carved from MNIST-family training sets: 50,000 / 10,000
DIGITS_FRACTIONS = (0.6, 0.2, 0.2)  # train / validation / test, stratified per class
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(RuntimeError):
    """A dataset that cannot be found or read; the message says where and why."""


@dataclass
class Dataset:
    """Three splits as tensors. x: (n, features) float32, standardised; y: (n,) int64."""

    name: str
    train_x: object
    train_y: object
    val_x: object
    val_y: object
    test_x: object
    test_y: object
    image_shape: tuple[int, int]  # (rows, columns): an RNN reads `rows` steps of `columns`
    num_classes: int
    mean: float = 0.0  # the standardisation: (raw pixel - mean) / std, training-split statistics
    std: float = 1.0

    @property
    def num_features(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def to(self, device) -> Dataset:
        moved = {k: getattr(self, k).to(device) for k in self.split_names()}
        return Dataset(
            self.name,
            **moved,
            image_shape=self.image_shape,
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
        )

    @staticmethod
    def split_names() -> tuple[str, ...]:
        return ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


# Parsed arrays held in memory by a warm launcher (nnisuite.launcher.server); its forked trials
# share them.
MEMORY: dict[str, object] = {}


def warm_array_cache(name: str, data_dir=None) -> None:
    """Keep `name`'s parsed arrays in this process (the launcher calls it before forking)."""
    if name == "digits":
        MEMORY["digits"] = load_digits_arrays()
    else:
        files = find_idx_files(name, data_dir)
        if files is None:
            return
        MEMORY[str(cache_path(name, files))] = load_mnist_arrays(name, data_dir)


def cache_dir() -> Path:
    return Path(os.environ.get("NNISUITE_CACHE", Path.home() / ".cache" / "nnisuite"))


# ---------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip). Bad magic, unknown type or a short file raise."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # a truncated .gz raises EOFError
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize  # exact: numpy's product wraps at 2**63
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: IDX file truncated or padded: header says {shape} "
            f"({expected} bytes of data), file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


IDX_CODES = {np.dtype(v): k for k, v in IDX_DTYPES.items()}  # big-endian dtype -> type code


def write_idx(path: str | Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write `array` as an IDX file (read_idx's inverse; `.gz` appended when gz). Returns the
    path written."""
    path = Path(path)
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder(">")  # IDX is big-endian; a no-op for bytes
    code = IDX_CODES.get(dtype)
    if code is None:
        raise ValueError(f"IDX has no type code for {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(dtype).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def save_npz_atomic(path: Path, **arrays) -> None:
    """Write an .npz so that a concurrent reader sees the old file or the whole new one;
    a read-only cache folder costs speed, not correctness (nothing is written)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def candidate_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """Every folder searched for `name`'s IDX files, in order."""
    roots = []
    if data_dir:
        roots.append(Path(data_dir))
    if os.environ.get("NNISUITE_DATA"):
        roots.append(Path(os.environ["NNISUITE_DATA"]))
    roots.append(Path("/usr/share/datasets") / name)
    roots.append(cache_dir() / "torchvision")
    subdirs = ("", name, f"{name}/raw", f"{MNIST_FAMILY[name]}/raw")
    return [root / sub if sub else root for root in roots for sub in subdirs]


def find_idx_files(name: str, data_dir: str | Path | None) -> dict[str, Path] | None:
    for folder in candidate_dirs(name, data_dir):
        found = {}
        for key, stem in IDX_FILES.items():
            for candidate in (folder / stem, folder / f"{stem}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(IDX_FILES):
            return found
    return None


def try_torchvision_download(name: str) -> dict[str, Path] | None:
    """Download with torchvision where it is installed and the network allows; else None."""
    try:
        from torchvision import datasets  # optional: ~5 s of import, only on this path
    except ImportError:
        return None
    cls = getattr(datasets, MNIST_FAMILY[name])
    root = cache_dir() / "torchvision"
    try:
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except Exception:  # no network: the caller reports every place it looked
        return None
    return find_idx_files(name, None)


def locate_mnist_family(name: str, data_dir: str | Path | None) -> dict[str, Path]:
    """The IDX files of `name`: in --data-dir when one is given (only there: a run that asked
    for a folder never trains on another copy while recording that folder), else the usual
    places, else a torchvision download."""
    if data_dir:
        folders = [Path(data_dir) / sub for sub in ("", name, f"{name}/raw")]
        for folder in folders:
            found = {
                key: next((c for c in (folder / stem, folder / f"{stem}.gz") if c.is_file()), None)
                for key, stem in IDX_FILES.items()
            }
            if all(found.values()):
                return found
        raise DatasetError(
            f"--data-dir {data_dir}: no {name} IDX files there (nor in its {name}/ or "
            f"{name}/raw/): it needs {', '.join(IDX_FILES.values())} (or .gz)"
        )
    files = find_idx_files(name, data_dir) or try_torchvision_download(name)
    if files is None:
        roots = sorted({str(p) for p in candidate_dirs(name, data_dir)}, key=len)
        roots = [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]
        debian = f"apt-get install dataset-{name}, or " if name == "fashion-mnist" else ""
        raise DatasetError(
            f"dataset {name!r} not found in {', '.join(roots)} (and their {name}/, raw/ "
            f"folders); {debian}pass --data-dir DIR with its four IDX files "
            "(docs/guide.md: Datasets)"
        )
    return files


def cache_path(name: str, files: dict[str, Path]) -> Path:
    """The .npz cache of `name`, keyed by its source files' paths, sizes and mtimes."""
    key = hashlib.sha256()
    for k in sorted(files):
        st = files[k].stat()
        key.update(f"{files[k].resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
    return cache_dir() / f"{name}-{key.hexdigest()[:16]}.npz"


def load_mnist_arrays(name: str, data_dir: str | Path | None) -> dict[str, np.ndarray]:
    """The four IDX arrays of `name`, via the .npz cache when the sources are unchanged."""
    files = locate_mnist_family(name, data_dir)
    cache = cache_path(name, files)
    if str(cache) in MEMORY:
        return MEMORY[str(cache)]
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return {k: z[k] for k in IDX_FILES}
        except Exception:  # a half-written or damaged cache is rebuilt, never trusted
            pass
    arrays = {k: read_idx(p) for k, p in files.items()}
    problem = mnist_problem(arrays)
    if problem:
        folder = files["train_images"].parent
        raise DatasetError(f"{name} in {folder}: {problem} (an MNIST-family IDX set is needed)")
    save_npz_atomic(cache, **arrays)  # concurrent trials never read a partial cache
    return arrays


def mnist_problem(arrays: dict[str, np.ndarray]) -> str | None:
    """What makes four IDX arrays no MNIST-family set (the trials would fail later with a
    reshape or index error), else None."""
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            return f"{part} images are {images.shape}, not (n, 28, 28)"
        if labels.ndim != 1 or len(labels) != len(images):
            return f"{len(images)} {part} images but labels of shape {labels.shape}"
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) <= 9):
            return f"{part} labels run {int(labels.min())}..{int(labels.max())}, not 0..9"
        if images.dtype != np.uint8:
            return f"{part} images are {images.dtype}, not unsigned bytes"
    if len(arrays["train_images"]) <= VALIDATION_SIZE:
        return (
            f"{len(arrays['train_images'])} training images: more than {VALIDATION_SIZE:,} are "
            "needed (the validation split is carved from them)"
        )
    return None


# ---------------------------------------------------------------- splits


def split_indices(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / validation index split of range(n)."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def stratified_indices(labels: np.ndarray, fractions, seed: int) -> list[np.ndarray]:
    """Split indices per class by `fractions` (summing to 1), seeded, so each split keeps the
    class balance."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    bounds = np.cumsum(fractions)[:-1]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(bounds * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1,797 images, shipped inside scikit-learn), cached as .npz
    so a trial does not pay scikit-learn's import."""
    if "digits" in MEMORY:
        return MEMORY["digits"]
    cache = cache_dir() / "digits.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["images"], z["labels"]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    save_npz_atomic(cache, images=images, labels=labels)
    return images, labels


def to_tensors(name, splits, image_shape, num_classes) -> Dataset:
    """uint8 image splits -> float32 (n, features) standardised with the training statistics.

    Standardising raw pixel values gives the same numbers as scaling to [0, 1] first (the scale
    cancels); torch's multithreaded in-place ops make it ~10x faster than numpy temporaries."""
    import torch

    # np.require copies read-only arrays (np.frombuffer): cheap for uint8, and torch wants it
    xs = [
        torch.from_numpy(np.require(x, requirements=["C", "W"]).reshape(len(x), -1)).float()
        for x, _ in splits
    ]
    mean, std = xs[0].mean(), xs[0].std()
    tensors = []
    for x, (_, y) in zip(xs, splits):
        tensors += [x.sub_(mean).div_(std), torch.from_numpy(np.asarray(y, dtype=np.int64))]
    return Dataset(
        name,
        *tensors,
        image_shape=image_shape,
        num_classes=num_classes,
        mean=float(mean),
        std=float(std),
    )


def raw_splits(name: str, data_dir: str | Path | None = None, seed: int = 0) -> list[tuple]:
    """The train / validation / test splits as the dataset's files hold them: (uint8 images
    (n, rows, cols), int64 labels) each. Digits: stratified 60/20/20 by `seed`; the MNIST
    family: 10,000 validation images drawn by `seed` from the training file, the test file."""
    if name == "digits":
        images, labels = load_digits_arrays()
        parts = stratified_indices(labels, DIGITS_FRACTIONS, seed)
        return [(images[p], labels[p]) for p in parts]
    if name in MNIST_FAMILY:
        a = load_mnist_arrays(name, data_dir)
        train_idx, val_idx = split_indices(len(a["train_images"]), VALIDATION_SIZE, seed)
        return [
            (a["train_images"][train_idx], a["train_labels"][train_idx]),
            (a["train_images"][val_idx], a["train_labels"][val_idx]),
            (a["test_images"], a["test_labels"]),
        ]
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def load_dataset(name: str, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load `name` as train / validation / test tensors; the validation split depends on `seed`."""
    splits = raw_splits(name, data_dir, seed)
    rows, cols = splits[0][0].shape[1:]
    return to_tensors(name, splits, (rows, cols), 10)
