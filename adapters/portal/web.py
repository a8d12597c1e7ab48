"""The applicants' status page (Arts. 16, 29, 30): a person enters the transfer number and ID number (POST, never
in a URL or a log) and reads, in Chinese, where the transfer stands, who must act by when, what they may need to
do, the notices they were sent and how to reach the agencies.

Served by ``sigw portal`` with aiohttp and Jinja2 (``aiohttp-jinja2``), the HTTP stack the national interface
already uses. The page needs no JavaScript; it calls the gateway's ``QueryTransferStatus`` with the portal's
own certificate, like any portal, and shows the gateway's ``ApplicantStatus`` as it is.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import grpc
import jinja2
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from adapters.agency_client import failure
from adapters.portal.notices import NoticeBook, ReceivedNotice
from gateway._gen.sigw.v1 import common_pb2, portal_pb2, transfer_pb2, transfer_pb2_grpc
from gateway.domain import idnumber, ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyType
from gateway.domain.regions import NATIONAL_HOTLINES
from gateway.domain.transfer.explain import chinese_date
from gateway.security.pki import PARTICIPANT_METADATA_KEY

__all__ = ["ClientFailures", "GatewayLookup", "Lookup", "build_app"]

log = logging.getLogger("sigw.portal")

_HERE = Path(__file__).parent
TEXT_COOKIE = "text"
"""``large`` for the large-type mode (Art. 30), set by the header's link, kept a year."""


@dataclass(frozen=True)
class Lookup:
    """What the gateway answered a status query."""

    reply: transfer_pb2.QueryTransferStatusResponse | None = None
    code: grpc.StatusCode = grpc.StatusCode.OK
    reason: str = ""
    """The ``ErrorInfo`` reason of a refusal."""
    retry_after_s: float = 0.0


class GatewayLookup:
    """The gateway's ``QueryTransferStatus``, called as this portal (its certificate; a development gateway
    reads the participant from metadata instead)."""

    def __init__(self, target: str, participant: str, credentials: grpc.ChannelCredentials | None) -> None:
        self.credentials = credentials
        self.metadata = None if credentials is not None else ((PARTICIPANT_METADATA_KEY, participant),)
        self._replaced: list[grpc.aio.Channel] = []
        self.channel: grpc.aio.Channel | None = None
        self.connect(target)

    def connect(self, target: str) -> None:
        """Call the gateway at ``target`` from now on (tests start the portal before the gateway)."""
        if self.channel is not None:
            self._replaced.append(self.channel)
        self.channel = (
            grpc.aio.secure_channel(target, self.credentials)
            if self.credentials is not None
            else grpc.aio.insecure_channel(target)
        )
        self.stub = transfer_pb2_grpc.TransferServiceStub(self.channel)

    async def query(self, transfer_id: str, id_number: str) -> Lookup:
        request = transfer_pb2.QueryTransferStatusRequest(transfer_id=transfer_id, id_number=id_number)
        try:
            reply = await self.stub.QueryTransferStatus(request, timeout=5.0, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            failed = failure(error)
            return Lookup(code=error.code(), reason=failed.reason, retry_after_s=failed.retry_after_s or 0.0)
        return Lookup(reply)

    async def close(self) -> None:
        for channel in [*self._replaced, self.channel]:
            if channel is not None:
                await channel.close()


@dataclass
class ClientFailures:
    """Failed queries per client address: after ``limit`` within ``window_s`` the portal itself refuses that
    address until the window passes, so one visitor cannot use up the portal's allowance at the gateway (which
    counts failures per portal) and lock everybody else out. A query counts as failed from the moment it starts
    until it succeeds, so parallel queries cannot all pass the check together."""

    limit: int = 5
    window_s: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _next_sweep: float = 0.0

    def _recent(self, client: str) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] <= self.clock() - self.window_s:
            times.popleft()
        return times

    def attempt(self, client: str) -> float:
        """Count a query by ``client``; the seconds it must wait instead (0: go ahead, and call :meth:`succeeded`
        if the query finds the transfer)."""
        self._sweep()
        times = self._recent(client)
        if len(times) >= self.limit:
            return times[0] + self.window_s - self.clock()
        times.append(self.clock())
        return 0.0

    def succeeded(self, client: str) -> None:
        """Take back the attempt of a query that found its transfer (or was refused by the gateway untried)."""
        times = self._seen.get(client)
        if times:
            times.pop()

    def clients(self) -> int:
        """How many addresses are remembered (bounded: quiet ones are forgotten once their window has passed)."""
        return len(self._seen)

    def _sweep(self) -> None:
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        for quiet in [c for c, times in self._seen.items() if not times or times[-1] <= now - self.window_s]:
            del self._seen[quiet]


# ----------------------------------------------------------------------------------------------- the form


def _normalized(value: str) -> str:
    """What a person typed, as the gateway expects it: full-width digits and letters made ASCII (NFKC), spaces
    dropped, letters upper case (a final ``x`` of an ID number is ``X``)."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def form_errors(transfer_id: str, id_number: str) -> dict[str, str]:
    """The form's problems by field, in Chinese; empty when both look right."""
    errors = {}
    if not transfer_id:
        errors["transfer_id"] = "请输入转移编号。"
    elif not ids.TRANSFER_ID.fullmatch(transfer_id):
        errors["transfer_id"] = "转移编号的格式不对。它由字母T、数字和连字符组成，例如 T03-20260302-8F3A2C1D。"
    if not id_number:
        errors["id_number"] = "请输入身份证号码。"
    elif len(id_number) != 18:
        errors["id_number"] = f"身份证号码应为18位，您输入了{len(id_number)}位。"
    elif not idnumber.is_valid(id_number):
        errors["id_number"] = "身份证号码不正确，请逐位核对（最后一位可能是数字或字母X）。"
    return errors


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


# ----------------------------------------------------------------------------------------------- filters


def _day(d: common_pb2.Date) -> str:
    return chinese_date(date(d.year, d.month, d.day)) if d.year else ""


def _when(value: Timestamp | datetime) -> str:
    moment = value if isinstance(value, datetime) else value.ToDatetime(tzinfo=UTC)
    local = moment.astimezone(SHANGHAI)
    return f"{chinese_date(local.date())} {local:%H:%M}"


def _iso(value: Timestamp | datetime) -> str:
    moment = value if isinstance(value, datetime) else value.ToDatetime(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(timespec="minutes")


def _addressee(notice: ReceivedNotice) -> str:
    if notice.addressee == portal_pb2.ADDRESSEE_EMPLOYER:
        return f"用人单位{notice.employer_name}"
    return "本人"


# ----------------------------------------------------------------------------------------------- handlers


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as raised:  # redirects and 404s carry the same headers
        _secure(request, raised)
        raise
    return _secure(request, response)


def _secure(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(_SECURITY_HEADERS)
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"  # a person's status stays out of every cache
    return response


LOOKUP_KEY = web.AppKey("lookup", GatewayLookup)
BOOK_KEY = web.AppKey("book", NoticeBook)
FAILURES_KEY = web.AppKey("failures", ClientFailures)


def _large(request: web.Request) -> bool:
    wanted = request.query.get("text")
    if wanted in ("large", "normal"):
        return wanted == "large"
    return request.cookies.get(TEXT_COOKIE) == "large"


def _page(request: web.Request, template: str, http_status: int = 200, **context: Any) -> web.Response:
    large = _large(request)
    response = aiohttp_jinja2.render_template(template, request, {"large": large, **context}, status=http_status)
    wanted = request.query.get("text")
    if wanted in ("large", "normal"):
        response.set_cookie(TEXT_COOKIE, wanted, max_age=365 * 24 * 3600, httponly=True, samesite="Strict")
    return response


async def form_page(request: web.Request) -> web.Response:
    return _page(request, "form.html", errors={}, values={})


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def status_page(request: web.Request) -> web.Response:
    posted = await request.post()
    transfer_id = _normalized(str(posted.get("transfer_id", "")))[:64]
    id_number = _normalized(str(posted.get("id_number", "")))[:64]
    values = {"transfer_id": transfer_id}  # the ID number is never written back into a page
    errors = form_errors(transfer_id, id_number)
    if errors:
        return _page(request, "form.html", 400, errors=errors, values=values)
    failures, client = request.app[FAILURES_KEY], _client(request)
    wait = failures.attempt(client)
    if wait:
        log.info("status query refused: too many failures from this address")
        return _too_many(request, values, wait)
    lookup = await request.app[LOOKUP_KEY].query(transfer_id, id_number)
    if lookup.code is grpc.StatusCode.NOT_FOUND:  # the attempt stays counted
        log.info("status query found nothing")
        problem = (
            "没有找到与这个转移编号和身份证号码相符的转移。请核对两项后再试；仍查不到的，请联系受理您申请的经办机构。"
        )
        return _page(request, "form.html", 404, errors={}, problem=problem, values=values)
    failures.succeeded(client)
    if lookup.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        log.info("status query refused by the gateway: %s", lookup.reason or "rate limited")
        if lookup.reason == "TOO_MANY_FAILED_QUERIES":
            return _too_many(request, values, lookup.retry_after_s or failures.window_s)
        return _busy(request, values, lookup.retry_after_s)
    if lookup.reply is None:
        log.warning("status query failed at the gateway: %s", lookup.code.name)
        problem = "系统暂时无法查询，请稍后再试。您的申请不受影响。"
        return _page(request, "form.html", 503, errors={}, problem=problem, values=values)
    notices = await request.app[BOOK_KEY].of_transfer(lookup.reply.transfer.transfer_id)
    return _page(request, "status.html", transfer=lookup.reply.transfer, status=lookup.reply.status, notices=notices)


def _too_many(request: web.Request, values: dict[str, str], wait_s: float) -> web.Response:
    problem = f"查询失败的次数过多。为保护您的信息，请在{_minutes(wait_s)}分钟后再试。"
    return _refused(request, values, problem, wait_s)


def _busy(request: web.Request, values: dict[str, str], wait_s: float) -> web.Response:
    """The gateway is busy (its plain rate limit, not the failure guard): try again shortly."""
    wait_s = max(wait_s, 1.0)
    later = f"{math.ceil(wait_s)}秒" if wait_s < 60 else f"{_minutes(wait_s)}分钟"
    problem = f"查询的人较多，系统正忙。请在{later}后再试。您的申请不受影响。"
    return _refused(request, values, problem, wait_s)


def _refused(request: web.Request, values: dict[str, str], problem: str, wait_s: float) -> web.Response:
    response = _page(request, "form.html", 429, errors={}, problem=problem, values=values)
    response.headers["Retry-After"] = str(math.ceil(wait_s))
    return response


async def back_to_form(_: web.Request) -> web.Response:
    """A status is only ever the answer to the form (its data never goes in a URL)."""
    raise web.HTTPSeeOther("/")


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="SERVING\n")


def build_app(lookup: GatewayLookup, book: NoticeBook, failures: ClientFailures) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=16 * 1024)
    app[LOOKUP_KEY], app[BOOK_KEY], app[FAILURES_KEY] = lookup, book, failures
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(day=_day, when=_when, iso=_iso, addressee=_addressee)
    env.globals["hotlines"] = {
        "hrss": NATIONAL_HOTLINES[AgencyType.HRSS],
        "healthcare": NATIONAL_HOTLINES[AgencyType.HEALTHCARE_SECURITY],
    }
    app.router.add_get("/", form_page)
    app.router.add_post("/status", status_page)
    app.router.add_get("/status", back_to_form)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static", _HERE / "static")
    return app
