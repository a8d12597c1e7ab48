"""The national interface's HTTP endpoint (aiohttp): one POST path, a JSON envelope in, a JSON envelope out.

Every answer is an envelope with HTTP 200 (but a file 9102 downloads, which is its bytes), also a refusal
(``infcode`` -1 and a Chinese ``err_msg``): never an HTTP 500 or a stack trace. The caller is the participant of
its mutual-TLS certificate; the envelope's ``fixmedins_code`` and ``mdtrtarea_admvs`` must be that hospital and its
region, and the hospital must be in the registry. The concerns of the gRPC call guard apply here too: a rate limit
per participant, a size limit, ``sigw_national_requests_total{infno,infcode}`` and
``sigw_national_request_seconds{infno}``, and logs with ID numbers masked.
"""

from __future__ import annotations

import itertools
import logging
import os
import ssl
import time
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.api.identity import METADATA_KEY, IdentityResolver
from gateway.api.limits import RateLimiter
from gateway.api.national import envelope
from gateway.api.national.transactions import TRANSACTIONS, Call, Download, transaction_of
from gateway.app.ports import Clock
from gateway.app.visits import VisitService
from gateway.domain import idnumber
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import InvalidArgument, SigwError
from gateway.domain.participants import Participant
from gateway.domain.reasons import CATALOGUE

__all__ = ["MAX_BODY_BYTES", "NationalEndpoint"]

log = logging.getLogger("sigw.national")

MAX_BODY_BYTES = 4 * 1024 * 1024
"""The largest request body taken (a fee upload of 2,000 details is about 1 MB)."""
_NO_SIGN_IN = frozenset({"9001"})


class NationalEndpoint:
    def __init__(
        self,
        service: VisitService,
        identity: IdentityResolver,
        limiter: RateLimiter,
        metrics: CollectorRegistry,
        clock: Clock,
        path: str,
    ) -> None:
        self.service = service
        self.identity = identity
        self.limiter = limiter
        self.clock = clock
        self.path = path
        # inf_refmsgid's 10-digit sequence: this process (3 digits) and a counter, so that the API processes
        # sharing the port never answer with the same one.
        self._process = os.getpid() % 1000
        self._sequence = itertools.count(1)
        self.requests = Counter(
            "sigw_national_requests",
            "National-interface messages answered, by transaction and infcode.",
            ["infno", "infcode"],
            registry=metrics,
        )
        self.seconds = Histogram(
            "sigw_national_request_seconds", "National-interface answer time, by transaction.", ["infno"],
            registry=metrics,
        )  # fmt: skip

    def app(self) -> web.Application:
        application = web.Application(client_max_size=MAX_BODY_BYTES)
        application.router.add_post(self.path, self.handle)
        return application

    def _caller(self, request: web.Request) -> Participant:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
        return self.identity.http_caller(der, request.headers.get(METADATA_KEY))

    async def handle(self, request: web.Request) -> web.Response:
        received = self.clock().astimezone(SHANGHAI)
        started = time.perf_counter()
        infno, region = "", ""
        try:
            body = await request.read()
            try:
                doc = envelope.loads(body)
            except ValueError as bad:
                raise InvalidArgument(reason="NOT_JSON", message="the body is not JSON") from bad
            if isinstance(doc, dict):
                infno = str(doc.get("infno", ""))[:5]
                region = (
                    str(doc.get("mdtrtarea_admvs", ""))[:6] if str(doc.get("mdtrtarea_admvs", "")).isdigit() else ""
                )
            actor = self._caller(request)
            self.limiter.check(str(actor))
            message = envelope.parse(doc)
            handler = transaction_of(message.infno)
            hospital = self.service.hospital(actor, message.hospital_code, message.treatment_region)
            if message.infno[:4] not in _NO_SIGN_IN:
                await self.service.require_signed_in(hospital, message.sign_no)
            output = await handler(Call(actor, hospital, message, received, self.service))
            code, err_msg = envelope.SUCCESS, ""
        except web.HTTPRequestEntityTooLarge:
            too_large = f"{CATALOGUE['BODY_TOO_LARGE'].zh}：超过 {MAX_BODY_BYTES // 2**20} MB（BODY_TOO_LARGE）"
            code, err_msg, output = envelope.FAILURE, too_large, None
        except SigwError as refusal:
            code, err_msg, output = envelope.FAILURE, envelope.error_text(refusal), None
            log.info("national %s refused: %s", infno or "-", idnumber.scrub(str(refusal)))
        except Exception:  # an answer, never a stack trace; the operator finds it in the log
            log.exception("national %s failed", infno or "-")
            code, err_msg, output = envelope.FAILURE, f"{CATALOGUE['INTERNAL'].zh}（INTERNAL）", None
        label = infno[:4] if infno[:4] in TRANSACTIONS else "other"
        self.requests.labels(label, str(code)).inc()
        self.seconds.labels(label).observe(time.perf_counter() - started)
        if isinstance(output, Download):
            disposition = f"attachment; filename*=UTF-8''{quote(output.name)}"
            return web.Response(
                body=output.content, content_type="application/octet-stream",
                headers={"Content-Disposition": disposition},
            )  # fmt: skip
        answer = envelope.answer(
            code=code, region=region, sequence=self._process * 10**7 + next(self._sequence) % 10**7,
            received=received,
            responded=self.clock().astimezone(SHANGHAI), err_msg=err_msg, output=output,
        )  # fmt: skip
        return web.Response(text=envelope.dumps(answer), content_type="application/json", charset="utf-8")
