"""The committed generated code matches proto/: regenerate into a temporary folder and compare."""

from __future__ import annotations

import filecmp
import importlib
import sys
from pathlib import Path
from typing import Protocol, cast

ROOT = Path(__file__).resolve().parent.parent


class GenProto(Protocol):
    """What the test uses of scripts/gen_proto.py, which is not an importable package."""

    def generate(self, out: Path) -> None: ...


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        gen_proto = cast(GenProto, importlib.import_module("gen_proto"))
    finally:
        sys.path.pop(0)
    gen_proto.generate(tmp_path / "_gen")
    committed = ROOT / "gateway" / "_gen"
    fresh = {p.relative_to(tmp_path / "_gen") for p in (tmp_path / "_gen").rglob("*") if p.is_file()}
    current = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert fresh == current, "generated files differ from proto/: run `make proto`"
    stale = [str(p) for p in sorted(fresh) if not filecmp.cmp(tmp_path / "_gen" / p, committed / p, shallow=False)]
    assert not stale, f"stale generated code: {stale}; run `make proto`"
