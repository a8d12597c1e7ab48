"""Write the error catalogue (``gateway/domain/reasons.py``) out where callers read it: the contract's
``ErrorReason`` enum (``proto/sigw/v1/errors.proto``) and the README's table (between its ``errors`` markers).
A test fails while either is stale; ``make errors`` (or this script) brings both up to date.

An enum value keeps its number for good: new reasons are numbered after the highest one the file has.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.domain.reasons import CATALOGUE  # noqa: E402

PROTO = ROOT / "proto" / "sigw" / "v1" / "errors.proto"
README = ROOT / "README.md"
BEGIN, END = "<!-- errors:begin (scripts/error_catalogue.py) -->", "<!-- errors:end -->"
_VALUE = re.compile(r"^\s+([A-Z][A-Z0-9_]*) = ([0-9]+);", re.MULTILINE)


def _comment(text: str, indent: str = "  ") -> str:
    return "\n".join(f"{indent}// {line}" for line in textwrap.wrap(text, 110 - len(indent) - 3))


def proto_text(existing: str = "") -> str:
    numbers = {name: int(n) for name, n in _VALUE.findall(existing)}
    next_number = max(numbers.values(), default=0) + 1
    lines = [
        'syntax = "proto3";',
        "",
        "package sigw.v1;",
        "",
        _comment(
            'Every reason sigw sends in google.rpc.ErrorInfo (domain "sigw"): ErrorInfo.reason is the name of one '
            "of these values, as Google's APIs do (google.api.ErrorReason). The status also carries the English "
            "message and a zh-CN google.rpc.LocalizedMessage; bad input adds google.rpc.BadRequest with every bad "
            "field, and a retryable refusal google.rpc.RetryInfo. An agency's own refusal passes on with the "
            "agency's reason (AGENCY_REFUSED when it gave none). Written from gateway/domain/reasons.py by "
            "scripts/error_catalogue.py; the values keep their numbers.",
            "",
        ),
        "enum ErrorReason {",
        "  // buf:lint:ignore ENUM_VALUE_PREFIX",
        "  ERROR_REASON_UNSPECIFIED = 0;",
    ]
    for name in sorted(CATALOGUE, key=lambda n: (numbers.get(n, 10**9), n)):
        if name not in numbers:
            numbers[name] = next_number
            next_number += 1
        reason = CATALOGUE[name]
        lines += [
            _comment(f"{', '.join(reason.codes)}. {reason.meaning} Do: {reason.action}"),
            "  // buf:lint:ignore ENUM_VALUE_PREFIX",
            f"  {name} = {numbers[name]};",
        ]
    return "\n".join([*lines, "}", ""])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readme_table() -> str:
    rows = [
        "| code | reason | meaning | what to do | 中文 |",
        "|---|---|---|---|---|",
        *(
            f"| {' / '.join(f'`{c}`' for c in r.codes)} | `{name}` | {_cell(r.meaning)} | {_cell(r.action)} | "
            f"{_cell(r.zh)} |"
            for name, r in sorted(CATALOGUE.items(), key=lambda item: (item[1].codes, item[0]))
        ),
    ]
    return "\n".join([BEGIN, *rows, END])


def readme_text(readme: str) -> str:
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + readme_table() + readme[end:]


def main() -> int:
    PROTO.write_text(proto_text(PROTO.read_text() if PROTO.exists() else ""))
    README.write_text(readme_text(README.read_text()))
    print(f"{len(CATALOGUE)} reasons: {PROTO.relative_to(ROOT)} and the README's table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
