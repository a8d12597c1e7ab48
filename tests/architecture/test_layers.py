"""The house rule: one floor per layer, arrows only downward (the map is ``gateway/__init__.py``).

Every module's imports are read from its source, so the rule cannot rot: ``domain/`` imports nothing but itself,
``app/`` nothing but ``domain/`` and itself, and neither knows gRPC, Redis or protobuf; the outer floors import
only what lies below them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"

# The floors, top to bottom, and what each may import of sigw (itself is always allowed).
ALLOWED: dict[str, set[str]] = {
    "gateway.domain": set(),
    "gateway.app": {"gateway.domain"},
    "gateway.security": {"gateway.domain"},
    "gateway.wire": {"gateway.domain", "gateway._gen"},
    "gateway.store": {"gateway.domain", "gateway.app", "gateway.security"},
    "gateway.dispatch": {"gateway.domain", "gateway.app", "gateway.store", "gateway.security"},
    "gateway.api": {"gateway.domain", "gateway.app", "gateway.wire", "gateway.security", "gateway._gen"},
    "adapters": {"gateway.domain", "gateway.app", "gateway.wire", "gateway.security", "gateway._gen", "adapters"},
}
FORBIDDEN_IN_CORE = ("grpc", "grpc_status", "grpc_health", "grpc_reflection", "redis", "google.protobuf", "google.rpc")


def modules(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "_gen" not in p.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def floor_of(module: str) -> str | None:
    return next((f for f in sorted(ALLOWED, key=len, reverse=True) if module == f or module.startswith(f + ".")), None)


CORE = [p for d in ("domain", "app") for p in modules(GATEWAY / d)]


@pytest.mark.parametrize("path", CORE, ids=[dotted(p) for p in CORE])
def test_the_core_knows_no_grpc_redis_or_protobuf(path: Path) -> None:
    bad = {m for m in imports_of(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IN_CORE)}
    assert not bad, f"{dotted(path)} imports {sorted(bad)}"


LAYERED = [p for p in [*modules(GATEWAY), *modules(ROOT / "adapters")] if floor_of(dotted(p))]


@pytest.mark.parametrize("path", LAYERED, ids=[dotted(p) for p in LAYERED])
def test_arrows_point_down(path: Path) -> None:
    floor = floor_of(dotted(path))
    assert floor is not None
    allowed = ALLOWED[floor] | {floor}
    ours = {m for m in imports_of(path) if m.split(".")[0] in ("gateway", "adapters")}
    wrong = {m for m in ours if not any(m == a or m.startswith(a + ".") for a in allowed)}
    assert not wrong, f"{dotted(path)} (floor {floor}) imports {sorted(wrong)}"


def test_every_module_has_a_floor_or_is_wiring() -> None:
    """Besides the floors only the wiring (``server``, ``supervisor``, ``config``, ``cli``) and the package map
    stand alone."""
    loose = {dotted(p) for p in modules(GATEWAY) if floor_of(dotted(p)) is None}
    assert {m for m in loose if not m.startswith("gateway.cli")} == {
        "gateway",
        "gateway.server",
        "gateway.supervisor",
        "gateway.config",
    }


PUBLIC = [p for p in [*modules(GATEWAY), *modules(ROOT / "adapters")] if p.name != "__main__.py"]


@pytest.mark.parametrize("path", PUBLIC, ids=[dotted(p) for p in PUBLIC])
def test_every_module_declares_what_it_exports(path: Path) -> None:
    """``__all__`` names exactly what exists: a module's public face is written down (httpx style)."""
    module = importlib.import_module(dotted(path))
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{dotted(path)} has no __all__"
    assert len(set(exported)) == len(exported)
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{dotted(path)} exports names it does not have: {missing}"
