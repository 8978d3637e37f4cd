"""Command lines read strictly: a flag given twice is an error, never the last one silently.

    parser = Parser(prog="python -m nnisuite.x", description=__doc__)   # else argparse's own

argparse keeps the last value of a flag given twice (`--max-trials 2 ... --max-trials 500`
runs 500, in any spelling: `--max-trials=500`, a prefix `--max 500`). Every entry point's parser
is this one: the second occurrence is an error naming both. Flags meant to repeat (append,
count) are exempt. The standard library only: the trial command imports it too.
"""

from __future__ import annotations

import argparse
import sys

REPEATABLE = (
    argparse._AppendAction,
    argparse._AppendConstAction,
    argparse._CountAction,
    argparse._ExtendAction,
    argparse._HelpAction,
    argparse._VersionAction,
)


class Parser(argparse.ArgumentParser):
    def parse_known_args(self, args=None, namespace=None):
        tokens = list(sys.argv[1:] if args is None else args)
        seen: dict[str, str] = {}
        for token in tokens:
            if token == "--":
                break
            if not token.startswith("-") or token == "-":
                continue
            found = self._parse_optional(token)  # the flag a spelling means (prefix, =)
            if isinstance(found, list):  # Python 3.12+: every reading of the spelling
                found = found[0] if len(found) == 1 else None
            if not found or found[0] is None or isinstance(found[0], REPEATABLE):
                continue
            action, spelled = found[0], found[1]
            if action.dest in seen:
                self.error(
                    f"{spelled} given twice (first as {seen[action.dest]}): give each flag once"
                )
            seen[action.dest] = spelled
        return super().parse_known_args(args, namespace)
