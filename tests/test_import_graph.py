"""The import graph: the core never loads a framework, the backends never import each other,
and gan_diffusion's modules import each other without cycles.

Static checks parse every module with `ast` and count every `import` statement, at module
level and inside functions (a lazy import is still an edge: it runs on first use).
Dynamic `importlib.import_module(f"...")` calls are not seen.
"""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gan_diffusion"
BACKEND_PACKAGES = ("gan_diffusion.tf_backend", "gan_diffusion.torch_backend")
FRAMEWORKS = ("tensorflow", "torch", "keras")
# What each backend must never import: the other backend and the other framework.
FORBIDDEN = {
    "gan_diffusion.tf_backend": ("gan_diffusion.torch_backend", "torch"),
    "gan_diffusion.torch_backend": ("gan_diffusion.tf_backend", "tensorflow", "keras"),
}
# Import cycles that exist and are being removed (none now: cli -> compare.runner ->
# compare.worker -> cli went when the worker started calling runs.train_run). An entry whose
# cycle is gone fails the test until it is deleted. Never add entries here: break the cycle.
KNOWN_CYCLES: list[frozenset] = []


# -- the graph ------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    """gan_diffusion/metrics/api.py -> gan_diffusion.metrics.api; .../__init__.py -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """{module name: file} of every module of the package."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules imported anywhere in `source` (module `name`), relative imports resolved;
    `from pkg import sub` counts as `pkg.sub` when that is a module in `known`."""
    out = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            subs = {f"{base}.{a.name}" for a in node.names} & known
            out.update(subs or {base})
    return out


def import_graph() -> dict[str, set[str]]:
    """{module: gan_diffusion modules it imports} for every module of the package."""
    mods = all_modules()
    known = set(mods)
    return {m: imports_of(p.read_text(), m, p.name == "__init__.py", known) & known
            for m, p in mods.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component with a cycle, as one cycle through it
    [a, b, ..., a] (Tarjan's algorithm, then a walk inside the component)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                comps.append(comp)

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return [_cycle_in(graph, comp) for comp in comps]


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the smallest module of the component `comp` (breadth-first)."""
    start = min(comp)
    parent, queue = {}, [start]
    for v in queue:
        for w in sorted(graph[v] & comp):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"{sorted(comp)} is not strongly connected")


# -- the checks -----------------------------------------------------------------------------
def backend_violations(modules: dict[str, Path]) -> list[str]:
    """"module imports X" for every import a backend module must not make (FORBIDDEN)."""
    known = set(modules)
    bad = []
    for m, p in modules.items():
        for pkg, banned in FORBIDDEN.items():
            if m == pkg or m.startswith(pkg + "."):
                for imp in sorted(imports_of(p.read_text(), m, p.name == "__init__.py", known)):
                    if any(imp == b or imp.startswith(b + ".") for b in banned):
                        bad.append(f"{m} imports {imp}")
    return bad


def test_backends_never_import_each_other():
    bad = backend_violations(all_modules())
    assert not bad, "backends must only meet through the framework-free core:\n" + "\n".join(bad)


def test_the_backend_check_catches_a_cross_import(tmp_path):
    """The checker itself: a tf_backend module that imports torch_backend (or torch) is caught."""
    fake = tmp_path / "gan_diffusion" / "tf_backend" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(textwrap.dedent("""
        import numpy as np
        def lazy():
            from gan_diffusion.torch_backend.inception import InceptionExtractor
            import torch.nn
    """))
    assert backend_violations({"gan_diffusion.tf_backend.bad": fake}) == [
        "gan_diffusion.tf_backend.bad imports gan_diffusion.torch_backend.inception",
        "gan_diffusion.tf_backend.bad imports torch.nn"]


def test_no_import_cycles_but_the_known_one():
    cycles = find_cycles(import_graph())
    new = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not new, ("new import cycle(s) among gan_diffusion modules (module-level or lazy "
                     "imports); break them:\n" + "\n".join(" -> ".join(c) for c in new))
    gone = [sorted(k) for k in KNOWN_CYCLES if k not in {frozenset(c) for c in cycles}]
    assert not gone, f"known cycle(s) {gone} are gone: delete them from KNOWN_CYCLES"


# Layering (diffusers style): models (configs, plans) and schedulers sit below the families
# (the training/sampling bases) and never import them, lazily or not.
LOWER_LAYERS = ("gan_diffusion.models", "gan_diffusion.schedulers")
FAMILY_MODULES = ("gan_diffusion.families",)


def test_models_and_schedulers_import_no_family():
    inside = lambda m, pkgs: any(m == p or m.startswith(p + ".") for p in pkgs)  # noqa: E731
    bad = [f"{m} imports {i}" for m, imps in sorted(import_graph().items())
           if inside(m, LOWER_LAYERS) for i in sorted(imps) if inside(i, FAMILY_MODULES)]
    assert not bad, "models/ and schedulers/ must not import the family bases:\n" + "\n".join(bad)


def test_the_cycle_finder_sees_lazy_and_relative_imports():
    known = {"p", "p.a", "p.b", "p.c"}
    graph = {"p": set(), "p.c": set(),
             "p.a": imports_of("from p import b", "p.a", False, known),
             "p.b": imports_of("def f():\n    from . import a\n", "p.b", False, known)}
    assert graph["p.a"] == {"p.b"} and graph["p.b"] == {"p.a"}
    assert find_cycles(graph) == [["p.a", "p.b", "p.a"]]
    assert find_cycles({"x": {"y"}, "y": set()}) == []


def core_modules() -> list[str]:
    """Every module outside the two backend packages (and not the `python -m` entry point)."""
    return [m for m in all_modules() if not m.endswith("__main__")
            and not any(m == b or m.startswith(b + ".") for b in BACKEND_PACKAGES)]


def test_core_imports_no_framework():
    """Importing every framework-free module (in a fresh interpreter) loads no framework."""
    code = textwrap.dedent(f"""
        import importlib, sys
        for m in {core_modules()!r}:
            importlib.import_module(m)
        print(sorted({{m.split(".")[0] for m in sys.modules}} & {set(FRAMEWORKS)!r}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
