"""`sigw serve --demo` as its own process, driven by the `sigw` CLI as a person would; restarted on its
embedded Redis, it still knows every transfer."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PATIENCE_S, person_id

ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# These gateways serve plain text with development identities: no client certificates.
PLAIN = {**os.environ, "SIGW_TLS_DIR": "/nonexistent/sigw-pki"}


def sigw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=PLAIN
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sigw {' '.join(args)} failed: {result.stderr}")
    return result


class Served:
    def __init__(self, tmp: Path, *, single: bool = False, portal: bool = False) -> None:
        ports = free_ports(12)
        self.single = single
        self.portal = f"127.0.0.1:{ports[10]}" if portal else ""
        self.grpc, self.http = f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"
        self.data = tmp / "data"
        self.regions = tmp / "regions.toml"
        entries = []
        for i, code in enumerate(["110000", "310000", "440300", "510100"]):
            entries.append(
                f'[[regions]]\ncode = "{code}"\nhrss = "127.0.0.1:{ports[2 + 2 * i]}"\n'
                f'healthcare = "127.0.0.1:{ports[3 + 2 * i]}"\n'
            )
        entries.append('[[hospitals]]\ncode = "H44030000001"\nregion = "440300"\nname = "深圳一院"\nlevel = 3\n')
        if portal:
            entries.append(f'[[portals]]\ncode = "gov"\nnotify = "127.0.0.1:{ports[11]}"\n')
        self.regions.write_text("\n".join(entries))
        self.log = tmp / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "SIGW_CALENDAR_FILE": "",
            "SIGW_NATIONAL_LISTEN": "127.0.0.1:0",
            "SIGW_PORTAL_LISTEN": self.portal,  # never the fixed port 8000
            "SIGW_CLOCK_START": "2026-03-02T09:00:00+08:00",
            "SIGW_KEY_FILE": str(self.data.parent / "sigw.keys"),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--demo",
                "--insecure",
                "--dev-identity",
                "--grpc-listen",
                self.grpc,
                "--http-listen",
                self.http,
                "--data-dir",
                str(self.data),
                "--regions-file",
                str(self.regions),
                *(["--single"] if self.single else []),
            ],
            cwd=ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            if sigw("transfer", "list", "--region", "310000", "--target", self.grpc, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"gateway did not start:\n{self.log.read_text()}")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    s.start()
    yield s
    if s.process is not None:
        s.stop()


def test_a_single_process_demo_serves_the_status_page_too(tmp_path: Path) -> None:
    import urllib.request

    served = Served(tmp_path, single=True, portal=True)
    served.start()
    try:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            try:
                with urllib.request.urlopen(f"http://{served.portal}/", timeout=5) as page:
                    html = page.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "转移编号" in html and 'lang="zh-CN"' in html
    finally:
        assert served.stop() == 0
    assert "stopped" in served.log.read_text()


def test_a_person_at_the_cli_drives_a_transfer_to_completion_and_it_survives_a_restart(served: Served) -> None:
    created = sigw(
        "transfer",
        "create",
        "--target",
        served.grpc,
        "--kind",
        "employee-pension",
        "--id-number",
        person_id(),
        "--name",
        "王五",
        "--from",
        "110000",
        "--to",
        "310000",
        "--request-id",
        "cli-1",
    )
    transfer_id = re.search(r"transfer\s+(T\d\d-\d{8}-[0-9A-F]{8})", created.stdout)
    assert transfer_id, created.stdout
    tid = transfer_id.group(1)
    assert "state     submitted" in created.stdout and person_id() not in created.stdout

    watched = sigw("transfer", "watch", tid, "--target", served.grpc, "--watch-timeout", "30")
    assert [line.split("->")[1].split()[0] for line in watched.stdout.splitlines()] == [
        "submitted",
        "contact-sent",
        "funds-sent",
        "completed",
    ]

    shown = sigw("transfer", "show", tid, "--target", served.grpc).stdout
    assert "state     completed" in shown and "transfer-in" in shown and "funds " in shown

    listed = sigw("transfer", "list", "--region", "110000", "--target", served.grpc).stdout
    assert tid in listed and "completed" in listed

    status = sigw("transfer", "status", tid, "--id-number", person_id(), "--target", served.grpc).stdout
    assert "state     completed" in status

    refused = sigw(
        "transfer",
        "create",
        "--target",
        served.grpc,
        "--kind",
        "work-injury",
        "--id-number",
        person_id(),
        "--name",
        "王五",
        "--from",
        "110000",
        "--to",
        "310000",
        check=False,
    )
    assert refused.returncode == 1
    assert "FAILED_PRECONDITION" in refused.stderr and "reason: NOT_TRANSFERABLE" in refused.stderr

    assert served.stop() == 0
    served.start()
    again = sigw("transfer", "show", tid, "--target", served.grpc).stdout
    assert "state     completed" in again
    assert served.stop() == 0
    log = served.log.read_text()
    assert "DEVELOPMENT IDENTITY MODE" in log and person_id() not in log


def test_regions_lists_the_registry() -> None:
    out = sigw("regions", "--regions-file", str(ROOT / "config" / "regions.toml")).stdout
    assert all(code in out for code in ("110000", "310000", "440300", "510100"))
    assert "127.0.0.1:50061" in out


def test_a_hospital_settles_cancels_reconciles_and_an_operator_clears_with_the_cli(
    served: Served, tmp_path: Path
) -> None:
    bill = json.loads((ROOT / "examples" / "bill-inpatient.json").read_text())
    bill["admissionDate"] = {"year": 2026, "month": 2, "day": 20}
    bill["dischargeDate"] = {"year": 2026, "month": 3, "day": 1}
    bill_file = tmp_path / "bill.json"
    bill_file.write_text(json.dumps(bill, ensure_ascii=False))
    target = ("--target", served.grpc)
    hospital = ("--as", "hospital:440300:H44030000001")
    sigw(
        "filing",
        "create",
        *target,
        "--type",
        "long-term-resident",
        "--id-number",
        "11010519491231002X",
        "--name",
        "张三",
        "--insured",
        "110000",
        "--treatment",
        "440300",
        "--valid-from",
        "2026-01-01",
    )
    # The CLI makes msgids from the real time; this gateway's clock says 2026-03-02, so name them here.
    pre = sigw(
        "settlement", "pre", *target, "--bill", str(bill_file), "--msgid", "H44030000001" + "20260302080000" + "0009"
    ).stdout
    assert "nothing recorded" in pre and "fund 13,685.00 + account 3,000.00 + cash 3,315.00" in pre
    msgid = "H44030000001" + "20260302083000" + "0001"
    settled = sigw("settlement", "settle", *target, "--bill", str(bill_file), "--msgid", msgid).stdout
    settlement_id = re.search(r"settlement (S\d\d-[0-9a-f]{16})", settled)
    assert settlement_id and "month 2026-03" in settled
    again = sigw("settlement", "settle", *target, "--bill", str(bill_file), "--msgid", msgid).stdout
    assert settlement_id.group(1) in again
    recon = tmp_path / "recon.json"
    recon.write_text(
        json.dumps(
            {
                "startDate": {"year": 2026, "month": 3, "day": 1},
                "endDate": {"year": 2026, "month": 3, "day": 31},
                "totals": {
                    "count": 1,
                    "totalFen": 2000000,
                    "fundPayFen": 1368500,
                    "accountPayFen": 300000,
                    "cashPayFen": 331500,
                },
            }
        )
    )
    assert (
        "matched: gateway has 1 settlements"
        in sigw("settlement", "reconcile", *target, *hospital, "--request", str(recon)).stdout
    )
    statement = sigw("clearing", "statement", "2026-03", *target).stdout
    assert "16,685.00" in statement and "OPEN (running totals)" in statement
    recount = sigw("clearing", "recount", "2026-03", *target).stdout
    assert "recount matches" in recount and "1 settlements recounted" in recount
    cancelled = sigw(
        "settlement",
        "cancel",
        settlement_id.group(1),
        *target,
        *hospital,
        "--reason",
        "refund",
        "--msgid",
        msgid[:-1] + "3",
    )
    assert "cancelled" in cancelled.stdout
    closed = sigw("clearing", "close", "2026-03", "--csv", *target).stdout
    assert closed.splitlines()[0].startswith("row,month,insured_region") and len(closed.splitlines()) == 1
    late = sigw("settlement", "settle", *target, "--bill", str(bill_file), "--msgid", msgid[:-1] + "2", check=False)
    assert late.returncode == 1 and "MONTH_CLOSED" in late.stderr


def test_a_missing_regions_file_is_named_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "regions"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**PLAIN, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "config/regions.toml" in result.stderr


def test_sigw_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    regions = tmp_path / "regions.toml"  # far more than a pipe holds, so the write outlives the reader
    regions.write_text(
        "".join(f'[[regions]]\ncode = "{110000 + n:06d}"\nhrss = "127.0.0.1:{1024 + n}"\n' for n in range(6000))
    )
    reader = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "regions", "--regions-file", str(regions)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=PLAIN,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()  # like `| head -1`
    assert reader.wait(timeout=60) == 141
    assert b"Traceback" not in reader.stderr.read()
