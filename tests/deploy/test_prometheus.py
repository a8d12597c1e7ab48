"""The Prometheus artefacts, checked by the real tool (Debian's promtool): the alert rules parse and pass their
unit tests, and a real gateway's /metrics passes ``promtool check metrics`` and carries every series the alerts
name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import aiohttp

from tests.conftest import Demo

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "Debian's prometheus package (promtool) is needed: `make test` installs it"
    return subprocess.run([tool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_the_alert_rules_parse() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 12 rules found" in checked.stdout


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", str(ROOT / "tests" / "deploy" / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def test_metrics_pass_promtool_and_carry_what_the_alerts_name(demo: Demo) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{demo.gateway.http_port}/metrics") as reply,
    ):
        text = await reply.text()
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    exported = set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))
    counters = {f"{name}_total" for name in exported}
    named = set(re.findall(r"\b(sigw_\w+|grpc_server_\w+)", ALERTS.read_text()))
    # the supervisor's own process figures are served by `sigw serve`, not by a single gateway process
    missing = named - exported - counters - {"sigw_process_restarts_total", "sigw_process_up"}
    assert not missing, f"the alerts name series no gateway exports: {sorted(missing)}"
    assert "sigw_store_up 1.0" in text and "sigw_certificate_expiry_timestamp_seconds" in text


def test_the_alerts_match_grpc_codes_as_sigw_writes_them() -> None:
    """grpc_code carries the status code's name as grpc's Python enum spells it (UNAVAILABLE), so a matcher
    written in another spelling (Unavailable) would never fire."""
    import grpc

    names = {code.name for code in grpc.StatusCode}
    matchers = re.findall(r'grpc_code=~?"([^"]+)"', ALERTS.read_text())
    assert matchers
    for matcher in matchers:
        assert set(matcher.split("|")) <= names, matcher
