"""Files of the national interface: what 9101 uploads (a detail reconciliation's statement file, 3202) and what
9102 gives back (3202's result file), as hospital systems write and read them.

A file travels in ``fsUploadIn.in`` as base64 text or as a JSON array of byte values (both are sent). It is a
zip holding one text file, or the text itself; UTF-8 (with or without a byte-order mark) or GB18030. A
statement file has one settlement a line, tab-separated:

``setl_id  mdtrt_id  psn_no  medfee_sumamt  fund_pay_sumamt  acct_pay  refd_setl_flag``

(amounts in yuan; ``refd_setl_flag`` 1 when the hospital holds the settlement cancelled; a first line naming
the columns is skipped). The result file is a zip holding ``result.txt``, a line per settlement the two sides
disagree on, tab-separated:

``psn_no  mdtrt_id  setl_id  msgid  stmt_rslt  refd_setl_flag  memo  medfee_sumamt  fund_pay_sumamt  acct_pay``

(``stmt_rslt`` 1 不平; the amounts are the platform's, or the hospital's when the platform has none).
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.api.national.envelope import yuan
from gateway.api.national.values import IDENTIFIER, Reader
from gateway.domain import idnumber
from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.settlement import reconciliation
from gateway.domain.settlement.reconciliation import Difference, StatementLine

__all__ = [
    "MAX_LINES",
    "MAX_TEXT_BYTES",
    "STATEMENT_COLUMNS",
    "Statement",
    "check_no_id_numbers",
    "content_of",
    "result_file",
    "statement_of",
]

MAX_TEXT_BYTES = 32 * 1024 * 1024
"""The largest text a zip may unpack to (a zip bomb is refused before it is read)."""
MAX_LINES = 200_000
"""Settlements one statement file may list (a busy hospital's quarter)."""
STATEMENT_COLUMNS = (
    "setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag",
)  # fmt: skip
RESULT_COLUMNS = (
    "psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo", "medfee_sumamt",
    "fund_pay_sumamt", "acct_pay",
)  # fmt: skip
RESULT_NAME = "result.txt"
_ZIP_MAGIC = b"PK\x03\x04"
_MEMOS = {
    reconciliation.MISSING_AT_GATEWAY: "平台无此结算",
    reconciliation.MISSING_AT_HOSPITAL: "医药机构对账文件无此结算",
}


def _refused(description: str, field: str = "fsUploadIn.in") -> Exception:
    return invalid([FieldViolation(field, description)], reason="INVALID_FILE")


def content_of(raw: Any) -> bytes:
    """The bytes of ``fsUploadIn.in``: base64 text or an array of byte values."""
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _refused("应为base64编码的文件内容或字节数组") from None
    if isinstance(raw, list) and all(isinstance(b, int) and not isinstance(b, bool) for b in raw):
        if not all(-128 <= b <= 255 for b in raw):
            raise _refused("字节数组的值应在 -128..255 之间")
        return bytes(b & 0xFF for b in raw)  # Java's signed bytes as well
    raise _refused("必填：base64编码的文件内容或字节数组")


def check_no_id_numbers(content: bytes) -> None:
    """A file is kept in the clear until it is used: refuse one whose text holds an ID number (statement files
    name persons by psn_no only)."""
    if idnumber.contains(_text(content)):
        raise _refused("文件中不得包含身份证号（人员请以 psn_no 标识）")


def _text(content: bytes) -> str:
    if content.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise _refused("压缩包应只含一个对账文本文件")
                if members[0].file_size > MAX_TEXT_BYTES:
                    raise _refused(f"对账文件解压后超过 {MAX_TEXT_BYTES // 2**20} MB")
                with archive.open(members[0]) as member:
                    content = member.read(MAX_TEXT_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
            raise _refused("压缩包已损坏或格式不受支持") from None
        if len(content) > MAX_TEXT_BYTES:
            raise _refused(f"对账文件解压后超过 {MAX_TEXT_BYTES // 2**20} MB")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _refused("对账文件应为UTF-8或GB18030编码的文本")


@dataclass(frozen=True)
class Statement:
    """A statement file read: its lines and the psn_no each names (by setl_id)."""

    lines: list[StatementLine]
    person_numbers: dict[str, str]


def statement_of(content: bytes) -> Statement:
    """The lines of a statement file, ``InvalidArgument`` naming each bad line (``第N行.<column>``)."""
    rows = [line for line in _text(content).splitlines() if line.strip()]
    if rows and rows[0].split("\t")[0].strip() == STATEMENT_COLUMNS[0]:
        rows = rows[1:]
    if len(rows) > MAX_LINES:
        raise _refused(f"对账文件超过 {MAX_LINES} 行，请缩短对账期间")
    problems: list[FieldViolation] = []
    lines: list[StatementLine] = []
    person_numbers: dict[str, str] = {}
    seen: set[str] = set()
    for n, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row.split("\t")]
        r = Reader(dict(zip(STATEMENT_COLUMNS, cells, strict=False)), f"第{n}行.", problems)
        if len(cells) != len(STATEMENT_COLUMNS):
            r.add("列数", f"应为 {len(STATEMENT_COLUMNS)} 列（制表符分隔），实为 {len(cells)} 列")
            if len(problems) >= 20:
                break
            continue
        sid = r.text("setl_id", required=True, limit=30, pattern=IDENTIFIER)
        visit = r.text("mdtrt_id", required=True, limit=30, pattern=IDENTIFIER)
        psn = r.text("psn_no", limit=30, pattern=IDENTIFIER)
        if idnumber.scrub(psn) != psn:
            r.add("psn_no", "应为人员编号，不是身份证号")
        total, fund, account = r.fen("medfee_sumamt"), r.fen("fund_pay_sumamt"), r.fen("acct_pay")
        refunded = r.choice("refd_setl_flag", {"0": "正常", "1": "已退费"}, default="0") == "1"
        if sid in seen:
            r.add("setl_id", "与前面的行重复")
        seen.add(sid)
        if len(problems) >= 20:
            break
        if sid and visit and total is not None and fund is not None and account is not None:
            person_numbers[sid] = psn
            lines.append(StatementLine(sid, visit, total, fund, account, refunded))
    if problems:
        raise invalid(problems[:20], reason="INVALID_FILE")
    return Statement(lines, person_numbers)


def result_file(
    differences: Sequence[Difference[StatementLine]], person_numbers: dict[str, str], msgids: dict[str, str]
) -> bytes:
    """3202's result: a zip holding ``result.txt``, one line per settlement the two sides disagree on."""
    text = io.StringIO()
    for d in differences:
        shown = d.gateway or d.hospital
        assert shown is not None
        memo = _MEMOS.get(d.kind) or "、".join(_differing(d.gateway, d.hospital))
        cells = (
            person_numbers.get(d.settlement_id, ""), shown.visit_id, d.settlement_id, msgids.get(d.settlement_id, ""),
            "1", "1" if shown.refunded else "0", memo, str(yuan(shown.total_fen)), str(yuan(shown.fund_fen)),
            str(yuan(shown.account_fen)),
        )  # fmt: skip
        text.write("\t".join(cells) + "\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(RESULT_NAME, text.getvalue().encode("utf-8"))
    return buffer.getvalue()


def _differing(ours: StatementLine | None, theirs: StatementLine | None) -> list[str]:
    assert ours is not None and theirs is not None
    names = (
        ("visit_id", "就诊ID"), ("total_fen", "医疗费总额"), ("fund_fen", "基金支付"), ("account_fen", "个人账户支付"),
        ("refunded", "退费标志"),
    )  # fmt: skip
    return [f"{label}不一致" for attribute, label in names if getattr(ours, attribute) != getattr(theirs, attribute)]
