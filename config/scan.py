"""Which parameter names a Python trial reads from `nni.get_next_parameter()`, found by reading
its source (ast: nothing is imported or run), and how they compare with the search space: the
log's `feature1` defect (a tuned name the trial never reads; a name the trial reads that the
space lacks), for anyone's trial.

    scan = scan_trial(Path("train.py"))
    problems = compare(scan, space, space_file)     # nnisuite.config.problem.Problem, with severity

Seen: `p = nni.get_next_parameter()` (any import spelling; also `... or {}`, `dict(...)`,
`.copy()`, aliases `q = p`), then `p["lr"]`, `p.get("lr", 0.1)`, `p.pop("lr")`, `"lr" in p`; the
same dict handed to a function of the same file (`main(p)`, `main(params=p)`: its argument is
followed) or unpacked into one (`train(**p)`: its parameters are the names read, the ones
without a default required), also a function imported from a local module (`from model import
build`: read in model.py at its lines); a dict of defaults updated with it (`params = {...};
params.update(p)`: the defaults' names are untuned on purpose); argparse's namespace
(`add_argument` destinations are the defaults) under NNI's `merge_parameter(args, p)`,
`vars(args).update(p)` or `params = vars(args); params.update(p)`, then `args.lr`; a
module-level `p` read inside functions; local modules the file imports when it does not call
get_next_parameter itself.
Not seen (the scan then says where it lost track and reports no unread names): a key that is not
a string literal (`p[name]`), iteration (`for k in p`, `p.items()`), the dict passed to another
module's function reached other than by `from module import name`, or stored in an object,
argparse options added in another file, and
anything done with `exec`, `getattr` or through another file's variables.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from nnisuite.config.problem import Problem

SOURCE_CALL = "get_next_parameter"
# Calls that only show or measure the parameters (a dict handed to them is not lost track of).
HARMLESS = {"print", "pprint", "str", "repr", "len", "dumps", "dump", "info", "debug", "warning"}
HARMLESS |= {"log", "format", "set_description", "log_hyperparams", "add_hparams"}
MAX_FILES = 20
MAX_BYTES = 4 << 20  # a trial file larger than this is not read (the scan says so)


@dataclass
class Read:
    name: str
    file: Path
    line: int
    # "subscript" (KeyError when absent), "get" (a default), "none" (.get(name): None), "in",
    # "argument" (f(**p): a required argument)
    how: str


@dataclass
class Scan:
    """What one trial's source shows of the parameters it reads."""

    files: list[Path] = field(default_factory=list)
    calls: list[tuple[Path, int]] = field(default_factory=list)  # get_next_parameter() sites
    reads: list[Read] = field(default_factory=list)
    defaults: set[str] = field(default_factory=set)  # untuned on purpose (a defaults dict)
    options: set[str] = field(default_factory=set)  # argparse destinations (add_argument)
    takes: dict[str, set[str]] = field(default_factory=dict)  # f(**p): f -> its parameter names
    takes_at: dict[str, tuple[Path, int]] = field(default_factory=dict)
    lost: list[tuple[Path, int, str]] = field(default_factory=list)  # where tracking stopped
    error: str | None = None  # the file could not be read or parsed


def is_source_call(node) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == SOURCE_CALL) or (
        isinstance(func, ast.Name) and func.id == SOURCE_CALL
    )


def const_str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def called(node, *names: str) -> bool:
    """A call of a function of one of these names (`vars(x)`, `nni.utils.merge_parameter(...)`)."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)) in names


def argparse_destinations(tree: ast.AST) -> set[str]:
    """The attribute names `parser.add_argument(...)` calls create: `dest=`, else the first long
    option (`--hidden-size` -> hidden_size), else a positional's name."""
    found = set()
    for node in ast.walk(tree):
        if not called(node, "add_argument"):
            continue
        dest = next((const_str(k.value) for k in node.keywords if k.arg == "dest"), None)
        flags = [v for v in (const_str(a) for a in node.args) if v]
        if dest is None:
            long = [f for f in flags if f.startswith("--")]
            plain = [f for f in flags if not f.startswith("-")]
            short = [f for f in flags if f.startswith("-") and not f.startswith("--")]
            chosen = (long or plain or short or [None])[0]
            dest = chosen.lstrip("-").replace("-", "_") if chosen else None
        if dest:
            found.add(dest)
    return found


class _Scope(ast.NodeVisitor):
    """One function (or the module) with the names in it that hold the NNI parameters."""

    def __init__(self, scanner: _Scanner, tracked: set[str]):
        self.s = scanner
        self.tracked = set(tracked)

    # --- what holds the parameters -------------------------------------------------------
    def holds(self, node) -> bool:
        if is_source_call(node):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.tracked
        if isinstance(node, ast.Call):  # dict(p), p.copy(), copy.deepcopy(p)
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "copy" and self.holds(f.value):
                return True
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if name in ("dict", "deepcopy", "copy") and node.args and self.holds(node.args[0]):
                return True
        if called(node, "vars") and node.args and self.holds(node.args[0]):
            return True  # vars(merge_parameter(args, p)): the namespace's dict
        if called(node, "merge_parameter") and any(self.holds(a) for a in node.args[1:2]):
            return True  # NNI's merge_parameter(argparse namespace, p): a namespace
        if isinstance(node, ast.Dict):  # {**defaults, **p}
            return any(k is None and self.holds(v) for k, v in zip(node.keys, node.values))
        if isinstance(node, ast.BoolOp):  # nni.get_next_parameter() or {}
            return any(self.holds(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.holds(node.body) or self.holds(node.orelse)
        return False

    def literal_keys(self, node) -> set[str]:
        if called(node, "vars"):  # vars(args): the argparse destinations
            return set(self.s.scan.options)
        if isinstance(node, ast.Dict):
            return {const_str(k) for k in node.keys if const_str(k)}
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
            return {kw.arg for kw in node.keywords if kw.arg}
        return set()

    # --- statements ---------------------------------------------------------------------
    def assign(self, targets, value) -> None:
        for target in targets:
            if isinstance(target, ast.Name):
                if value is not None and self.holds(value):
                    self.tracked.add(target.id)
                    if any(called(n, "merge_parameter") for n in ast.walk(value)):
                        self.s.scan.defaults |= self.s.scan.options  # argparse's defaults
                    if isinstance(value, ast.Dict):
                        self.s.scan.defaults |= self.literal_keys(value)
                        for k, v in zip(value.keys, value.values):
                            if k is None and isinstance(v, ast.Name) and v.id in self.s.dicts:
                                self.s.scan.defaults |= self.s.dicts[v.id]
                else:
                    self.tracked.discard(target.id)
                    keys = self.literal_keys(value) if value is not None else set()
                    if keys:
                        self.s.dicts[target.id] = keys
                    if called(value, "vars") and value.args and isinstance(value.args[0], ast.Name):
                        self.s.namespace_of[target.id] = value.args[0].id

    def take(self, value) -> None:
        """Visit an assigned value; one that holds the parameters is only noted, not a use."""
        if self.holds(value):
            self.s.note_calls(value)
        else:
            self.visit(value)

    def visit_Assign(self, node):
        self.take(node.value)
        self.assign(node.targets, node.value)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.take(node.value)
        self.assign([node.target], node.value)

    def visit_FunctionDef(self, node):
        pass  # functions are scanned on their own, with what they inherit or are handed

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    # --- expressions --------------------------------------------------------------------
    def visit_Subscript(self, node):
        if self.holds(node.value):
            key = const_str(node.slice)
            if key is not None:
                self.s.read(key, node, "subscript")
            elif isinstance(node.ctx, ast.Load):
                self.s.lose(node, "a key that is not a string literal")
            self.visit(node.slice)
            return
        self.generic_visit(node)

    def visit_Compare(self, node):
        if (
            len(node.ops) == 1
            and isinstance(node.ops[0], (ast.In, ast.NotIn))
            and self.holds(node.comparators[0])
            and const_str(node.left)
        ):
            self.s.read(const_str(node.left), node, "in")
            return
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and self.holds(f.value):
            key = const_str(node.args[0]) if node.args else None
            if f.attr in ("get", "pop", "setdefault") and key is not None:
                if len(node.args) > 1:
                    self.s.read(key, node, "get")
                else:
                    self.s.read(key, node, "none" if f.attr == "get" else "subscript")
            elif f.attr not in ("copy", "update"):
                self.s.lose(node, f"its .{f.attr}()")
            for arg in node.args[1:]:
                self.visit(arg)
            return
        if isinstance(f, ast.Attribute) and f.attr == "update" and node.args:
            if self.holds(node.args[0]) and isinstance(f.value, ast.Name):
                name = f.value.id  # defaults.update(p): defaults now holds the parameters
                self.s.note_calls(node.args[0])
                self.tracked.add(name)
                self.s.scan.defaults |= self.s.dicts.get(name, set())
                if name in self.s.namespace_of:  # params = vars(args): args holds them too
                    self.tracked.add(self.s.namespace_of[name])
                return
            inner = f.value
            if self.holds(node.args[0]) and called(inner, "vars") and inner.args:
                # vars(args).update(p): argparse's namespace now holds the parameters
                self.s.note_calls(node.args[0])
                if isinstance(inner.args[0], ast.Name):
                    self.tracked.add(inner.args[0].id)
                self.s.scan.defaults |= self.s.scan.options
                return
        if is_source_call(node):
            self.s.scan.calls.append((self.s.file, node.lineno))
        callee_name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
        if callee_name in HARMLESS:  # print(p), logger.info(p), json.dumps(p): not a use
            for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                if self.holds(arg):
                    self.s.note_calls(arg)
                else:
                    self.visit(arg)
            return
        handed = False
        callee = self.s.functions.get(f.id) if isinstance(f, ast.Name) else None
        params = callee_params(callee) if callee is not None else None
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                self.visit(arg.value)
                continue
            if self.holds(arg):
                handed = True
                self.s.note_calls(arg)
                if params is not None and i < len(params[0]):
                    self.s.follow(callee, params[0][i])
                else:
                    self.s.lose(arg, f"handed to {ast.unparse(f)}()")
            else:
                self.visit(arg)
        for kw in node.keywords:
            if not self.holds(kw.value):
                self.visit(kw.value)
                continue
            handed = True
            self.s.note_calls(kw.value)
            if kw.arg is None:  # f(**p)
                if params is not None and not params[2]:
                    self.s.unpacked(callee, params, kw.value)
                else:
                    self.s.lose(kw.value, f"unpacked into {ast.unparse(f)}()")
            elif params is not None and kw.arg in params[0] + params[1]:
                self.s.follow(callee, kw.arg)
            else:
                self.s.lose(kw.value, f"handed to {ast.unparse(f)}()")
        if not handed or callee is None:
            self.visit(f)

    def visit_Attribute(self, node):
        """args.lr of a namespace holding the parameters (merge_parameter, vars(args).update)."""
        if (
            isinstance(node.value, ast.Name)
            and node.value.id in self.tracked
            and isinstance(node.ctx, ast.Load)
        ):
            self.s.read(node.attr, node, "subscript")
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in self.tracked and isinstance(node.ctx, ast.Load):
            self.s.lose(node, "used as a whole")

    def visit_For(self, node):
        if self.holds(node.iter):
            self.s.lose(node.iter, "iterated over")
            for stmt in node.body + node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Return(self, node):
        if node.value is not None and self.holds(node.value):
            self.s.lose(node.value, "returned")
            return
        self.generic_visit(node)


def callee_params(fn) -> tuple[list[str], list[str], bool, set[str]]:
    """(positional names, keyword-only names, takes **kwargs, names with a default)."""
    a = fn.args
    positional = [x.arg for x in a.posonlyargs + a.args]
    with_default = set(positional[len(positional) - len(a.defaults) :]) if a.defaults else set()
    kwonly = [x.arg for x in a.kwonlyargs]
    with_default |= {x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None}
    return positional, kwonly, a.kwarg is not None, with_default


class _Scanner:
    def __init__(self, scan: Scan, file: Path, tree: ast.Module, root: Path | None = None):
        self.scan, self.file = scan, file
        self.functions = {
            n.name: n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        self.home: dict[int, Path] = {}  # id(function) -> its file, for another file's
        if root is not None:
            self.functions |= self.imported_functions(tree, root)
        self.dicts: dict[str, set[str]] = {}  # names bound to dict literals (defaults)
        self.namespace_of: dict[str, str] = {}  # params = vars(args): params -> args
        scan.options |= argparse_destinations(tree)
        self.followed: set[tuple[str, str]] = set()
        self.module_scope: _Scope | None = None

    def imported_functions(self, tree: ast.Module, root: Path) -> dict:
        """`from model import build` of a local module (under `root`): build's definition,
        read from model.py (not run), so that `build(**p)` and `build(p)` are followed."""
        found = {}
        for node in tree.body:
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            parts = node.module.split(".")
            for candidate in (root.joinpath(*parts).with_suffix(".py"),
                              root.joinpath(*parts, "__init__.py")):  # fmt: skip
                if not candidate.is_file() or candidate.resolve() == self.file:
                    continue
                try:
                    other = ast.parse(candidate.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, SyntaxError, RecursionError, ValueError):
                    break
                defined = {
                    n.name: n
                    for n in other.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                }
                for alias in node.names:
                    if alias.name in defined:
                        fn = defined[alias.name]
                        found[alias.asname or alias.name] = fn
                        self.home[id(fn)] = candidate.resolve()
                break
        return found

    @contextlib.contextmanager
    def in_file_of(self, fn):
        """Reads inside `fn` are at its own file's lines."""
        here = self.file
        self.file = self.home.get(id(fn), here)
        try:
            yield
        finally:
            self.file = here

    def note_calls(self, node) -> None:
        for n in ast.walk(node):
            if is_source_call(n):
                self.scan.calls.append((self.file, n.lineno))

    def read(self, name: str, node, how: str) -> None:
        self.scan.reads.append(Read(name, self.file, node.lineno, how))

    def lose(self, node, why: str) -> None:
        self.scan.lost.append((self.file, node.lineno, why))

    def follow(self, fn, param: str) -> None:
        if (fn.name, param) in self.followed:
            return
        self.followed.add((fn.name, param))
        with self.in_file_of(fn):
            self.run_scope(fn, {param})

    def unpacked(self, fn, params, node) -> None:
        positional, kwonly, _, with_default = params
        names = [n for n in positional + kwonly if n not in ("self", "cls")]
        self.scan.takes[fn.name] = set(names)
        self.scan.takes_at[fn.name] = (self.home.get(id(fn), self.file), fn.lineno)
        for name in names:  # a parameter with a default may go untuned; one without may not
            if name in with_default:
                self.scan.defaults.add(name)
            self.scan.reads.append(Read(name, self.file, node.lineno, "argument"))

    def run_scope(self, fn, tracked: set[str]) -> None:
        local = {
            a.arg
            for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
            if a.arg not in tracked
        }
        # a name the function assigns is its own (Python's rule), unless declared global
        declared = {n for g in ast.walk(fn) if isinstance(g, ast.Global) for n in g.names}
        local |= {
            n.id
            for n in ast.walk(fn)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in declared
        }
        module = self.module_scope.tracked if self.module_scope else set()
        module = set() if id(fn) in self.home else module  # another file: not our globals
        inherited = {n for n in module if n not in local}
        scope = _Scope(self, inherited | tracked)
        for stmt in fn.body:
            scope.visit(stmt)

    def run(self, tree: ast.Module) -> None:
        self.module_scope = _Scope(self, set())
        for stmt in tree.body:
            self.module_scope.visit(stmt)
        for fn in self.functions.values():  # module-level parameters read inside functions
            if id(fn) in self.home:
                continue  # another file's function: followed only where handed the dict
            if self.module_scope.tracked or any(is_source_call(n) for n in ast.walk(fn)):
                self.run_scope(fn, set())


def local_imports(tree: ast.Module, file: Path, root: Path) -> list[Path]:
    """The files under `root` that `file` imports (module.py or package/__init__.py)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = file.parent
            names += [
                str((base / (node.module or "").replace(".", "/")).relative_to(root)).replace(
                    "/", "."
                )
            ]
    found = []
    for name in names:
        parts = [p for p in name.split(".") if p]
        for candidate in (
            root.joinpath(*parts).with_suffix(".py"),
            root.joinpath(*parts, "__init__.py"),
        ):
            if parts and candidate.is_file() and candidate not in found:
                found.append(candidate)
    return found


def scan_trial(source: Path, root: Path | None = None) -> Scan:
    """Read `source` (and, where it has no get_next_parameter call, the local modules it
    imports, under `root`, default its folder) for the parameter names it reads."""
    scan = Scan()
    root = (root or source.parent).resolve()
    queue, seen = [source.resolve()], set()
    while queue and len(seen) < MAX_FILES:
        file = queue.pop(0)
        if file in seen:
            continue
        seen.add(file)
        try:
            if file.stat().st_size > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES >> 20} MB: not read")
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError,
                MemoryError) as exc:  # fmt: skip
            if file == source.resolve():
                why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                if isinstance(exc, (RecursionError, MemoryError)):
                    why = "nested too deeply for Python's parser"
                scan.error = f"{source}: cannot be read as Python ({why})"
                return scan
            continue
        scan.files.append(file)
        try:
            _Scanner(scan, file, tree, root).run(tree)
        except RecursionError:
            scan.error = f"{file}: nested too deeply to be read (Python's recursion limit)"
            return scan
        if not scan.calls:
            try:
                queue += local_imports(tree, file, root)
            except ValueError:
                pass
    return scan


def where(file: Path, line: int) -> str:
    try:
        shown = file.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = file
    return f"{shown}:{line}"


def did_you_mean(name: str, options) -> str | None:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


def compare(
    scan: Scan, space: dict, space_file: str, key_lines: dict[str, int] | None = None
) -> list[Problem]:
    """Problems of a scanned trial against its search space: an error for each name read that
    the space lacks (first read only; a `.get(name, default)` with no space name close to it is
    an optional parameter: a warning), a warning for each space name never read, a note where the
    scan lost track (then no warnings: it cannot know what is read past that point)."""
    if scan.error:
        return [Problem(scan.error.split(": ")[0], "trial", scan.error, "fix it", "note")]
    label = where(scan.files[0], 1).rsplit(":", 1)[0] if scan.files else "the trial"
    if not scan.calls:
        return [
            Problem(
                label,
                "trial",
                "never calls nni.get_next_parameter() (nor do the local modules it imports): "
                "parameter names not checked",
                "call it in the trial, or ignore this if another file does",
                "note",
            )
        ]
    problems: list[Problem] = []
    names = set(space)
    read_names = {r.name for r in scan.reads}
    seen: set[str] = set()
    for r in scan.reads:
        if r.name in names or r.name in seen or r.name in scan.defaults or r.how == "in":
            continue
        seen.add(r.name)
        close = did_you_mean(r.name, names - read_names) or did_you_mean(r.name, names)
        fix = (
            f"did you mean {close!r}? rename one of them"
            if close
            else (
                f"add {r.name!r} to the search space to tune it; an untuned default is best "
                "kept in a dict the parameters update (params = {...}; params.update(...))"
            )
        )
        severity = "error"
        if r.how == "subscript":
            effect = "the trial would crash (KeyError)"
        elif r.how == "argument":
            effect = "the call would fail (a missing argument)"
        elif r.how == "none":
            effect = "the trial would get None"
        else:
            effect = "the trial silently uses its default: it is never tuned"
            # an optional parameter on purpose, unless it is a few letters off a space name
            severity = "error" if close else "warning"
        problems.append(
            Problem(
                where(r.file, r.line),
                f"parameter {r.name!r}",
                f"read here but the search space ({space_file}) has no {r.name!r}: {effect}",
                fix,
                severity,
            )
        )
    refused: set[str] = set()
    for fn, taken in scan.takes.items():  # f(**p) with no **kwargs: a name f lacks fails
        file, line = scan.takes_at[fn]
        for name in sorted(names - taken):
            refused.add(name)
            close = did_you_mean(name, taken)
            problems.append(
                Problem(
                    where(file, line),
                    f"search space {name!r}",
                    f"{fn}(**parameters) takes no argument {name!r}: the call would fail "
                    "(an unexpected keyword)",
                    f"did you mean {close!r}?" if close else f"add {name} to {fn}() or remove it",
                )
            )
    if scan.lost:
        file, line, why = scan.lost[0]
        more = f" (and {len(scan.lost) - 1} more places)" if len(scan.lost) > 1 else ""
        problems.append(
            Problem(
                where(file, line),
                "trial",
                f"the parameters are {why} here{more}: names read past this point are not "
                "seen, so unread search-space names are not reported",
                "nothing to do; read them as params['name'] to have them checked",
                "note",
            )
        )
        return problems
    taken_all = set().union(*scan.takes.values()) if scan.takes else set()
    for name in space:
        if name in read_names or name in taken_all or name in refused:
            continue
        close = did_you_mean(name, read_names - names)
        line = (key_lines or {}).get(name)
        shown = f"{space_file}:{line}" if line else space_file
        if close in scan.defaults:
            # the log's `feature1` defect in NNI's quickstart style: the trial reads a near name
            # from its own defaults (no error at the read: a default is allowed), so this is it
            read = next(r for r in scan.reads if r.name == close)
            problems.append(
                Problem(
                    shown,
                    f"search space {name!r}",
                    f"never read by {label}, which reads {close!r} at {where(read.file, read.line)}"
                    f" instead: every trial trains with {close!r}'s default and {name!r} is "
                    "never tuned (the study log's feature1 defect)",
                    f"rename one of them ({name!r} in {space_file}, or {close!r} in the trial)",
                )
            )
            continue
        problems.append(
            Problem(
                shown,
                f"search space {name!r}",
                f"never read by {label}: tuning it changes nothing",
                f"did you mean {close!r}? rename one of them" if close else "read it or remove it",
                "warning",
            )
        )
    return problems
