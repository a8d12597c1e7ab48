"""The error catalogue (``gateway/domain/reasons.py``) is complete and current: every reason the code can raise
is in it, nothing in it is raised nowhere, and the contract's enum and the README's table say what it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grpc

from gateway._gen.sigw.v1 import errors_pb2
from gateway.domain.errors import AlreadyExists
from gateway.domain.idempotency import check_same_payload
from gateway.domain.reasons import CATALOGUE
from scripts import error_catalogue

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{4,}")
# Sent without a ``reason=`` literal the scan can see: the national interface's refusal of a body over its limit
# and its internal error (written into err_msg), and an idempotency key's reuse (f"{key}_REUSED").
WRITTEN_OUT = {"BODY_TOO_LARGE", "INTERNAL"}
REUSED = {"REQUEST_ID_REUSED", "MSGID_REUSED"}
NOT_SCANNED = WRITTEN_OUT | REUSED


def _constants(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _NAME.fullmatch(node.value):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [c for value in node.values for c in _constants(value)]
    return []


def raised_reasons() -> dict[str, str]:
    """Every reason literal in gateway/ and adapters/: a ``reason=`` argument, the second argument of
    ``invalid``, a value assigned to ``reason``, or a ``reason`` parameter's default; with where it is."""
    found: dict[str, str] = {}
    for path in sorted([*(ROOT / "gateway").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]):
        if "_gen" in path.parts or path.name == "reasons.py":
            continue
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.AST] = []
            if isinstance(node, ast.Call):
                values += [kw.value for kw in node.keywords if kw.arg == "reason"]
                name = node.func.id if isinstance(node.func, ast.Name) else ""
                if name == "invalid" and len(node.args) >= 2:
                    values.append(node.args[1])
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "reason" for t in node.targets
            ):
                values.append(node.value)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = [*node.args.args, *node.args.kwonlyargs]
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + [
                    *node.args.defaults,
                    *node.args.kw_defaults,
                ]
                values += [d for a, d in zip(args, defaults, strict=True) if a.arg == "reason" and d is not None]
            for value in values:
                for reason in _constants(value):
                    found.setdefault(reason, f"{where}:{getattr(node, 'lineno', 0)}")
    return found


def test_every_reason_the_code_raises_is_in_the_catalogue() -> None:
    missing = {r: where for r, where in raised_reasons().items() if r not in CATALOGUE}
    assert not missing, f"add these to gateway/domain/reasons.py: {missing}"


def test_the_catalogue_lists_nothing_the_code_never_raises() -> None:
    stale = set(CATALOGUE) - set(raised_reasons()) - NOT_SCANNED
    assert not stale, f"no code raises {sorted(stale)}"


def test_the_reasons_the_scan_cannot_see_are_sent_all_the_same() -> None:
    national = (ROOT / "gateway" / "api" / "national" / "server.py").read_text()
    assert all(name in national for name in WRITTEN_OUT)
    for key in ("request_id", "msgid"):
        try:
            check_same_payload("one", "another", key)
        except AlreadyExists as refused:
            assert refused.reason in REUSED
        else:
            raise AssertionError("a reused key with another payload must be refused")


def test_the_scan_sees_a_reason_that_is_not_in_the_catalogue(tmp_path: Path) -> None:
    source = 'raise FailedPrecondition(reason="NO_SUCH_REASON", message="m")\nreason = "OTHER_ONE" if x else "X_Y"\n'
    found = {c for node in ast.walk(ast.parse(source)) for c in _scanned(node)}
    assert found == {"NO_SUCH_REASON", "OTHER_ONE", "X_Y"}


def _scanned(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Call):
        return [c for kw in node.keywords if kw.arg == "reason" for c in _constants(kw.value)]
    if isinstance(node, ast.Assign):
        return _constants(node.value)
    return []


def test_each_entry_names_real_codes_and_says_what_to_do_in_both_languages() -> None:
    codes = {code.name for code in grpc.StatusCode}
    for name, reason in CATALOGUE.items():
        assert reason.name == name and reason.codes and set(reason.codes) <= codes, name
        assert reason.meaning and reason.action and re.search(r"[\u4e00-\u9fff]", reason.zh), name


def test_the_contracts_enum_is_the_catalogue() -> None:
    values = {v.name for v in errors_pb2.ErrorReason.DESCRIPTOR.values} - {"ERROR_REASON_UNSPECIFIED"}
    assert values == set(CATALOGUE)
    proto = (ROOT / "proto" / "sigw" / "v1" / "errors.proto").read_text()
    assert proto == error_catalogue.proto_text(proto), "run python scripts/error_catalogue.py"


def test_the_readmes_table_is_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == error_catalogue.readme_text(readme), "run python scripts/error_catalogue.py"
    assert all(f"`{name}`" in readme for name in CATALOGUE)
