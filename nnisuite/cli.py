"""The `nnisuite` console script: one command whose subcommands are the entry points a user
reaches for, with the same flags and exit codes as their `python -m` forms (which stay).

    nnisuite run config.yml               # python -m nnisuite.study.run config.yml
    nnisuite validate config.yml          # python -m nnisuite.config.validate ...
    nnisuite bench launcher --out DIR     # python -m nnisuite.benchmarks.launcher ...
    nnisuite SUBCOMMAND --help

Installed by `make` and by `pip install -e .`; works from any folder (your project's): paths
on the command line are relative to where you run it.
"""

from __future__ import annotations

import importlib
import os
import sys

# subcommand -> (module, one line)
COMMANDS = {
    "init": ("nnisuite.init", "a starting point: train.py and config.yml for your own study"),
    "run": (
        "nnisuite.study.run",
        "run a study: validate, start NNI, watch, stop, export; --resume",
    ),
    "validate": ("nnisuite.config.validate", "check experiment files before anything starts"),
    "repeat": ("nnisuite.study.repeat", "every variant x seed of a study as NNI runs, compared"),
    "nas": (
        "nnisuite.nas.__main__",
        "neural architecture search: 1-6 hidden layers, strategies, one-shot",
    ),
    "best": (
        "nnisuite.deploy.best",
        "a study's best model retrained over seeds, saved, with a card",
    ),
    "compress": (
        "nnisuite.deploy.compress",
        "the best model pruned, shrunk, fine-tuned, int8: against dense and scratch controls",
    ),
    "export": (
        "nnisuite.analysis.export",
        "NNI's stored results as CSV / markdown tables and plots",
    ),
    "compare": ("nnisuite.analysis.compare", "compare studies or runs over seeds, with statistics"),
    "optuna": (
        "nnisuite.analysis.optuna",
        "an NNI experiment as an Optuna study: plots, dashboard",
    ),
    "attention": ("nnisuite.analysis.attention", "MHA / MQA / GQA: attention maps, KV-cache sizes"),
    "bench": (
        None,
        "benchmarks: bench epoch | export | study | launcher | fork | manager | tabular",
    ),
}
BENCHMARKS = {
    "epoch": ("nnisuite.benchmarks.epoch", "one training epoch against the log's pipeline"),
    "export": ("nnisuite.benchmarks.export", "the exporter on a large generated experiment"),
    "study": ("nnisuite.benchmarks.study", "a study three ways: Optuna, NNI warm, NNI fresh"),
    "launcher": ("nnisuite.benchmarks.launcher", "what the warm launcher saves on your own script"),
    "fork": ("nnisuite.benchmarks.fork", "a forked trial's CPU, with and without gc.freeze"),
    "manager": (
        "nnisuite.benchmarks.manager",
        "how far one NNI manager goes: 1,000 trivial trials",
    ),
    "tabular": (
        "nnisuite.benchmarks.tabular.__main__",
        "a table of the 3.17 space; NNI's tuners simulated on it",
    ),
}


def listing(commands: dict, prefix: str) -> str:
    width = max(map(len, commands)) + 2
    return "\n".join(f"  {name:<{width}}{what}" for name, (_, what) in commands.items()) + (
        f"\n\n{prefix} --help says the rest."
    )


def usage() -> str:
    return (
        "usage: nnisuite SUBCOMMAND [FLAGS...]\n\n"
        "AutoML / NAS studies on Microsoft NNI 3.0 and PyTorch, for nnisuite's trials and your "
        "own.\n\nsubcommands:\n" + listing(COMMANDS, "nnisuite SUBCOMMAND")
    )


def dispatch(module_name: str, prog: str, argv: list[str]) -> int:
    """Run `module_name`'s main(argv) with its --help saying `prog`; its exit code."""
    module = importlib.import_module(module_name)
    build = getattr(module, "build_parser", None)
    if build is not None:

        def built(*args, **kwargs):
            parser = build(*args, **kwargs)
            parser.prog = prog
            return parser

        module.build_parser = built
    code = module.main(argv)
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> int:
    """The command's exit code. Output into a closed pipe (`nnisuite --help | head`) ends
    quietly, as other command-line tools do; a Ctrl-C that no subcommand handled is one line and
    exit 130."""
    try:
        return run(argv)
    except BrokenPipeError:
        # the reader left: point stdout at /dev/null so the interpreter's last flush is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"nnisuite: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, _ = COMMANDS[name]
    if module is None:  # bench
        if not rest or rest[0] in ("-h", "--help") or rest[0] not in BENCHMARKS:
            known = rest and rest[0] not in ("-h", "--help")
            text = "usage: nnisuite bench BENCHMARK [FLAGS...]\n\n" + listing(
                BENCHMARKS, "nnisuite bench BENCHMARK"
            )
            if known:
                print(f"nnisuite bench: unknown benchmark {rest[0]!r}\n\n{text}", file=sys.stderr)
                return 2
            print(text)
            return 0 if rest else 2
        module, _ = BENCHMARKS[rest[0]]
        return dispatch(module, f"nnisuite bench {rest[0]}", rest[1:])
    return dispatch(module, f"nnisuite {name}", rest)
