"""Call signatures of what a config names (`_target_`s, registered model builders), read from
source where possible: checking a config then imports neither torch nor Lightning, and bad
input is answered in a fraction of a second.

A target's module file is found without executing any package (`importlib.util.find_spec` of the
top-level package only) and parsed; a name the module re-exports (`from .adamw import AdamW`) is
followed to where it is defined. Anything source reading cannot settle (a class without its own
`__init__`, a name built at run time) falls back to importing the target, which is always right.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path

UNKNOWN_DEFAULT = object()  # a default that is not a literal (read from source)
_FOLLOW_DEPTH = 5  # re-exports followed before giving up on source


class NotFound(LookupError):
    """The target cannot be imported: no such module or no such name in it."""


def signature_of(target: str) -> inspect.Signature:
    """The parameters `target` ("pkg.module.Name") is called with: a function's, or a class's
    `__init__` without `self`. Raises NotFound when the target does not exist. Remembered per
    place its package is found (a user's `mynets` in another directory is another module)."""
    top = target.split(".")[0]
    try:
        spec = importlib.machinery.PathFinder.find_spec(top)  # looks on sys.path, imports nothing
    except (ImportError, ValueError):
        spec = None
    return _signature_of(target, spec.origin if spec is not None else None)


@functools.cache
def _signature_of(target: str, origin: str | None) -> inspect.Signature:
    module, _, name = target.rpartition(".")
    if module and module not in sys.modules:
        found = _from_source(module, name, _FOLLOW_DEPTH)
        if found is not None:
            return found
    return _from_import(target)


def model_builder_signature(name: str) -> inspect.Signature | None:
    """The builder registered as model `name`, None if there is none. The live registry when it
    is imported (a user's script registers its models before calling `frugal.train.main`), else
    frugal's own builders, read from source: without such a script nothing else registers."""
    registry = sys.modules.get("frugal.models.registry")
    if registry is not None and name in registry.list_models():
        return inspect.signature(registry._REGISTRY[name])  # read only: the registry's own map
    return _source_builders().get(name)


def model_names() -> list[str]:
    registry = sys.modules.get("frugal.models.registry")
    live = set(registry.list_models()) if registry is not None else set()
    return sorted(live | set(_source_builders()))


@functools.cache
def _source_builders() -> dict[str, inspect.Signature]:
    """Every `@register_model` builder in frugal/models/*.py, by registered name."""
    builders: dict[str, inspect.Signature] = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "models").glob("*.py")):
        for node in _parse(str(path)).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                name = _registered_name(decorator, node.name)
                if name is not None:
                    builders[name] = _signature(node.args, drop_first=False)
    return builders


def _registered_name(decorator: ast.expr, function_name: str) -> str | None:
    if isinstance(decorator, ast.Name) and decorator.id == "register_model":
        return function_name
    if (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Name)
        and decorator.func.id == "register_model"
    ):
        for keyword in decorator.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        return function_name
    return None


def _from_import(target: str) -> inspect.Signature:
    obj = _import(target)
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError) as err:
        raise NotFound(f"{target} is not callable") from err


def _import(target: str) -> object:
    """The object `target` names, imported (quietly: Hydra's own locator logs its failures)."""
    module_name, _, name = target.rpartition(".")
    if not module_name or not name:
        raise NotFound("not a dotted path pkg.module.Name")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # a user's module may fail in any way while importing
        lines = str(err).strip().splitlines()
        raise NotFound(f"{type(err).__name__}: {lines[0] if lines else ''}".strip(": ")) from err
    if not hasattr(module, name):
        raise NotFound(f"{module_name} has no {name!r}")
    return getattr(module, name)


def _module_file(module: str) -> Path | None:
    """The source file of `module`, found without executing any package's `__init__`."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    base = Path(spec.origin)
    if not rest:
        return base if base.suffix == ".py" else None
    if base.name != "__init__.py":
        return None
    folder = base.parent.joinpath(*rest)
    for candidate in (folder.with_suffix(".py"), folder / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _from_source(module: str, name: str, depth: int) -> inspect.Signature | None:
    path = _module_file(module)
    if path is None or depth == 0:
        return None
    try:
        tree = _parse(str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _signature(node.args, drop_first=False)
        if isinstance(node, ast.ClassDef) and node.name == name:
            init = next(
                (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                None,
            )
            # no __init__ of its own, or a dataclass: the import settles it
            return None if init is None or node.decorator_list else _signature(init.args, True)
    for node in tree.body:  # a re-export: follow it
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = _absolute(module, path, node)
                    return _from_source(source, alias.name, depth - 1) if source else None
    return None


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


@functools.cache
def _parse(path: str) -> ast.Module:
    return ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)


def _signature(args: ast.arguments, drop_first: bool) -> inspect.Signature:
    """An `inspect.Signature` from a parsed `def`: annotations as source text, defaults as
    literals (UNKNOWN_DEFAULT where a default is an expression)."""
    kind = inspect.Parameter
    positional = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = [
        _param(arg, param_kind, default)
        for (arg, param_kind), default in zip(positional, defaults, strict=True)
    ]
    if args.vararg is not None:
        params.append(_param(args.vararg, kind.VAR_POSITIONAL, None))
    params += [
        _param(arg, kind.KEYWORD_ONLY, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg is not None:
        params.append(_param(args.kwarg, kind.VAR_KEYWORD, None))
    return inspect.Signature(params[1:] if drop_first else params)


def _param(arg: ast.arg, kind: inspect._ParameterKind, default: ast.expr | None):
    value = inspect.Parameter.empty
    if default is not None:
        try:
            value = ast.literal_eval(default)
        except (ValueError, SyntaxError, TypeError):
            value = UNKNOWN_DEFAULT
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else inspect._empty
    return inspect.Parameter(arg.arg, kind, default=value, annotation=annotation)


@functools.cache
def constant_of(target: str) -> object:
    """A module-level constant (`SHAPES = ("linear", ...)`), read from source so that a choice
    list has one home (the module that uses it) without importing that module's torch."""
    module, _, name = target.rpartition(".")
    path = _module_file(module)
    if path is not None and module not in sys.modules:
        for node in _parse(str(path)).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                try:
                    return ast.literal_eval(node.value)  # type: ignore[union-attr]
                except ValueError:
                    break
    return _import(target)
