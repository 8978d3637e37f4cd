"""The log's 3.18 model space: an MLP of 1 to 6 hidden layers, as an NNI ModelSpace.

    space = DepthSpace(64, 10)                  # choice `depth` in 1..6, widths as the log's
    space = DepthSpace(64, 10, extended=True)   # + per-layer `width{i}` and `act{i}` choices
    model = space.freeze({"depth": 3, "seed": 0})
    supernet_space = DepthSpace(64, 10, fixed_width=256, seeded=False)   # for one-shot NAS

Widths follow the log: depth 1 is [256], depth d >= 2 is [128, 256, ..., 256]. The hidden
stack is NNI's `Repeat` (label `depth`); the first layer's width is an expression of `depth`.
`seed` (label `seed`, one value per repeat) makes repeated trainings separate architectures to
NNI, so a grid search trains each depth once per seed. A one-shot supernet needs every depth's
output to have one width: `fixed_width` gives every hidden layer that width, and `seeded=False`
drops the seed choice (a supernet is trained once).
"""

from __future__ import annotations

import warnings

# NNI 3.0 scans torch.nn for layers to wrap and warns about newer torch classes it does not know.
warnings.filterwarnings(
    "ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning
)

import nni  # noqa: E402
from nni.mutable import MutableExpression, ensure_frozen  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableLinear, Repeat  # noqa: E402
from nni.nas.space import model_context  # noqa: E402
from torch import nn  # noqa: E402

from nnisuite.config.nas_settings import MAX_DEPTH, MIN_DEPTH, check_depth_bounds  # noqa: E402

FIRST_WIDTH, WIDTH = 128, 256  # the log's widths
EXTENDED_WIDTHS = [64, 128, 256, 512]
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def log_widths(depth: int) -> list[int]:
    """The log's hidden widths for a depth: [256] or [128, 256, ..., 256]."""
    return [WIDTH] if depth == 1 else [FIRST_WIDTH] + [WIDTH] * (depth - 1)


class Block(nn.Module):
    """Linear -> activation; the activation is a LayerChoice in the extended space."""

    def __init__(self, in_features, out_features, index: int, extended: bool):
        super().__init__()
        self.linear = MutableLinear(in_features, out_features)
        if extended:
            self.act = LayerChoice(
                {k: cls() for k, cls in ACTIVATIONS.items()}, label=f"act{index}"
            )
        else:
            self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.linear(x))


class DepthSpace(ModelSpace):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        min_depth: int = MIN_DEPTH,
        max_depth: int = MAX_DEPTH,
        repeats: int = 1,
        extended: bool = False,
        fixed_width: int | None = None,
        seeded: bool = True,
    ):
        super().__init__()
        check_depth_bounds(min_depth, max_depth)
        depth = nni.choice("depth", list(range(min_depth, max_depth + 1)))
        self.seed = 0
        if seeded:
            self.seed = ensure_frozen(self.add_mutable(nni.choice("seed", list(range(repeats)))))
        if fixed_width:
            widths = [fixed_width] * max_depth
        elif extended:
            widths = [nni.choice(f"width{i}", EXTENDED_WIDTHS) for i in range(max_depth)]
        else:
            first = MutableExpression.condition(depth == 1, WIDTH, FIRST_WIDTH)
            widths = [first] + [WIDTH] * (max_depth - 1)
        inputs = [in_features, *widths[:-1]]
        blocks = [Block(inputs[i], widths[i], i, extended) for i in range(max_depth)]
        self.hidden = Repeat(blocks, depth)
        if fixed_width:
            self.head = MutableLinear(fixed_width, num_classes)
        else:
            last = MutableExpression.switch_case(
                depth, {d: widths[d - 1] for d in range(min_depth, max_depth + 1)}
            )
            self.head = MutableLinear(last, num_classes)

    def freeze(self, sample: dict) -> DepthSpace:
        """A fixed model of this space: the constructor run again with the sample in context."""
        with model_context(sample):
            return self.__class__(*self.trace_args, **self.trace_kwargs)

    def forward(self, x):
        return self.head(self.hidden(x.flatten(1)))
