"""Logs: structured, one event per line, through ``structlog``.

Everything sigw logs goes through the standard library's ``logging`` (so libraries' records come along too) and
is rendered by structlog's ``ProcessorFormatter``: JSON lines (``SIGW_LOG_FORMAT=json``, the default when the
output is not a terminal, for a log collector) or aligned key=value text in a terminal (``console``). Each line has
``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``process`` (the supervisor's child: api-1, delivery, ...)
and ``event``; a call's line adds ``request_id``, ``participant``, ``method``, ``code`` and ``duration_ms``.
ID numbers and mobile numbers are masked in every value, whatever logged them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from gateway.domain import idnumber

__all__ = ["LOG_FORMATS", "mask_personal_data", "setup_logging"]

LOG_FORMATS = ("json", "console")


def _masked(value: Any) -> Any:
    return idnumber.mask_text(value) if isinstance(value, str) else value


def mask_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No ID number or mobile number leaves through the logs unmasked, in the message or in any field."""
    for key, value in event.items():
        event[key] = _masked(value)
    return event


def setup_logging(process: str = "", log_format: str | None = None, stream: TextIO | None = None) -> None:
    """Route every log record of this process through structlog, at INFO, to ``stream`` (default stderr)."""
    out = stream or sys.stderr
    chosen = log_format or os.environ.get("SIGW_LOG_FORMAT") or ("console" if out.isatty() else "json")
    if chosen not in LOG_FORMATS:
        raise SystemExit(f"SIGW_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {chosen!r}")
    named: list[Any] = []
    if process:
        pid = os.getpid()

        def add_process(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
            event.setdefault("process", process)
            event.setdefault("pid", pid)
            return event

        named.append(add_process)
    before: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *named,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=before,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
