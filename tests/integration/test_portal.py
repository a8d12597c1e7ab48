"""The applicants' portal against a real gateway: result notices through the durable outbox (Art. 16), the status
page over real HTTP, the status query's guard, and the applicant's status on the gRPC reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from adapters.portal.server import PortalServer
from adapters.portal.web import ClientFailures
from gateway._gen.sigw.v1 import agency_pb2, operator_pb2, operator_pb2_grpc, portal_pb2, portal_pb2_grpc, transfer_pb2
from gateway.app.transfers import StatusQueryLimits
from tests.conftest import Demo, FakeClock, start_demo, start_portal
from tests.helpers import OPERATOR, all_delivered, error_details, eventually, person_id
from tests.portal_cases import EMPLOYER_MOBILE, MOBILE, TARGET, creation, kept, transfer_in

S = transfer_pb2


async def _stop(demo: Demo) -> None:
    await demo.channel.close()
    await demo.gateway.stop(grace_s=0.2)
    await demo.sims.stop()
    if demo.portal is not None:
        await demo.portal.stop()


@pytest.fixture
async def with_portal(redis_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Demo]:
    portal = await start_portal(tmp_path / "portal")
    demo = await start_demo(redis_url, clock, act=False, portal=portal)
    yield demo
    await _stop(demo)


def _page_url(demo: Demo, path: str = "/") -> str:
    assert demo.portal is not None
    return f"http://127.0.0.1:{demo.portal.http_port}{path}"


async def _post(demo: Demo, transfer_id: str, id_number: str) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(_page_url(demo, "/status"), data={"transfer_id": transfer_id, "id_number": id_number}) as r,
    ):
        return r.status, await r.text(), dict(r.headers)


async def _notices(portal: PortalServer, transfer_id: str) -> list[tuple[int, str, str]]:
    return [(n.addressee, n.mobile_masked, n.text) for n in await portal.book.of_transfer(transfer_id)]


async def test_a_completed_transfer_tells_the_person_and_the_employer_and_the_page_shows_it(
    with_portal: Demo, redis_url: str
) -> None:
    portal = with_portal.portal
    assert portal is not None
    case = await transfer_in(with_portal, "completed", 11)
    await eventually(lambda: kept(portal) == 2)
    await all_delivered(redis_url)
    assert kept(portal) == 2  # one each, nothing more on the way
    notices = await _notices(portal, case.transfer_id)
    assert sorted(n[:2] for n in notices) == [
        (portal_pb2.ADDRESSEE_PERSON, MOBILE[:3] + "****" + MOBILE[7:]),
        (portal_pb2.ADDRESSEE_EMPLOYER, EMPLOYER_MOBILE[:3] + "****" + EMPLOYER_MOBILE[7:]),
    ]
    assert all("已办结" in text and case.transfer_id in text for *_, text in notices)
    status, html, headers = await _post(with_portal, case.transfer_id, case.id_number)
    assert status == 200
    assert "转移已完成" in html and "已发送的通知" in html and "已转入上海市" in html
    assert "大字版（返回查询页）" in html  # the result is in no URL: the type-size link says where it leads
    assert "138****5678" in html and MOBILE not in html  # masked on the page, as everywhere
    assert case.id_number not in html and case.id_number[:4] + "*" * 10 + case.id_number[14:] in html
    assert headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    # the agencies' notices are as before: the source agency was told to end the membership
    source = with_portal.agency("110000")
    await eventually(
        lambda: any(m.transfer_notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_COMPLETED for m in source.received)
    )


async def test_a_rejected_transfer_tells_the_person_the_reason(with_portal: Demo, redis_url: str) -> None:
    portal = with_portal.portal
    assert portal is not None
    case = await transfer_in(with_portal, "rejected", 12)
    await eventually(lambda: kept(portal) == 2)
    await all_delivered(redis_url)
    assert kept(portal) == 2
    notices = await _notices(portal, case.transfer_id)
    person = [text for who, _, text in notices if who == portal_pb2.ADDRESSEE_PERSON]
    assert person and "不予转移" in person[0] and "缴费记录与信息表不一致" in person[0]
    status, html, _ = await _post(with_portal, case.transfer_id, case.id_number)
    assert status == 200 and "不予转移" in html and "缴费记录与信息表不一致" in html
    assert "行政复议" in html  # what the person may do about it


async def test_steps_between_tell_nobody_and_an_overdue_step_tells_the_person(with_portal: Demo) -> None:
    portal = with_portal.portal
    assert portal is not None
    case = await transfer_in(with_portal, "contact_sent", 13)
    with_portal.clock.advance(days=40)
    sweeper = with_portal.gateway.sweeper
    assert sweeper is not None
    assert await sweeper.sweep() == [case.transfer_id]
    await eventually(lambda: kept(portal) == 2)
    texts = [text for *_, text in await _notices(portal, case.transfer_id)]
    assert all("超过期限" in t and "北京市社会保险经办机构" in t for t in texts), texts
    _, html, _ = await _post(with_portal, case.transfer_id, case.id_number)
    assert "已超期" in html and "超过期限的环节" in html


async def test_a_notice_waits_in_the_outbox_while_the_portal_is_down(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    # The registry's portal stopped before the transfer was cancelled: the notices stay pending, and arrive once
    # a portal listens on that address again.
    first = await start_portal(tmp_path / "first")
    await first.stop()
    demo = await start_demo(redis_url, clock, act=False, portal=first)
    try:
        case = await transfer_in(demo, "cancelled", 14)
        assert kept(first) == 0
        operator = operator_pb2_grpc.OperatorServiceStub(demo.channel)

        async def waiting() -> list[operator_pb2.QueuedMessage]:
            reply = await operator.ListQueued(operator_pb2.ListQueuedRequest(), metadata=OPERATOR)
            return [m for m in reply.messages if m.transfer_id == case.transfer_id]

        async def only_the_portals_notices_wait() -> bool:
            # the agencies' notices leave the outbox as soon as the simulated agency takes them; the portal's stay
            messages = await waiting()
            return len(messages) == 2 and all(m.recipient_portal for m in messages)

        await eventually(only_the_portals_notices_wait)
        # the operator sees whom they wait for: the portal, not an agency
        assert {(m.recipient_portal, m.HasField("recipient"), m.notice) for m in await waiting()} == {
            ("gov", False, "TRANSFER_CLOSED")
        }
        portal = await start_portal(tmp_path / "portal", notify=f"127.0.0.1:{first.notify_port}")
        try:
            await eventually(lambda: kept(portal) == 2)
            texts = [text for *_, text in await _notices(portal, case.transfer_id)]
            assert all("已撤销" in t and "本人撤回申请" in t for t in texts)
        finally:
            await portal.stop()
    finally:
        demo.portal = None
        await _stop(demo)


async def test_a_notice_for_a_portal_the_registry_no_longer_lists_goes_to_the_first_listed(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    portal = await start_portal(tmp_path / "p")
    before = await start_demo(redis_url, clock, act=False, portal=portal, portal_code="app")
    case = await transfer_in(before, "funds_sent", 22, portal="app")
    before.portal = None
    await _stop(before)
    # the same store and keys; the registry lists gov only now
    after = await start_demo(redis_url, clock, act=False, portal=portal, key_file=before.key_file)
    try:
        # A retry of the creating request gets its first answer; a new request naming the portal is refused.
        again = await after.transfers.CreateTransfer(creation("funds_sent", 22, portal="app"), metadata=TARGET)
        assert again.transfer.transfer_id == case.transfer_id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await after.transfers.CreateTransfer(creation("funds_sent", 23, portal="app"), metadata=TARGET)
        assert error_details(caught.value)[0] == "UNKNOWN_PORTAL"
        done = S.CompleteTransferRequest(request_id="d", transfer_id=case.transfer_id)
        await after.transfers.CompleteTransfer(done, metadata=TARGET)
        await eventually(lambda: kept(portal) == 2)
        await all_delivered(redis_url)
        assert kept(portal) == 2  # person and employer, once each
    finally:
        await _stop(after)


async def test_without_portals_applicants_are_told_nothing_and_a_named_portal_is_refused(
    redis_url: str, clock: FakeClock
) -> None:
    demo = await start_demo(redis_url, clock, act=False)  # no [[portals]]
    try:
        case = await transfer_in(demo, "completed", 23)
        source = demo.agency("110000")
        await eventually(
            lambda: any(m.transfer_notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_COMPLETED for m in source.received)
        )
        await all_delivered(redis_url)
        got = await demo.transfers.GetTransfer(S.GetTransferRequest(transfer_id=case.transfer_id), metadata=TARGET)
        assert got.transfer.state == S.TRANSFER_STATE_COMPLETED  # the person reads it by status query
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await transfer_in(demo, "submitted", 24, portal="app")
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        reason, _, violations = error_details(caught.value)
        assert reason == "UNKNOWN_PORTAL" and [f for f, _ in violations] == ["contact.portal"]
    finally:
        await _stop(demo)


async def test_the_portal_takes_a_message_id_once(with_portal: Demo) -> None:
    portal = with_portal.portal
    assert portal is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{portal.notify_port}") as channel:
        stub = portal_pb2_grpc.NotifyServiceStub(channel)
        notice = portal_pb2.ResultNotice(transfer_id="T01-20260302-0000ABCD", text="您的转移已办结。", mobile=MOBILE)
        first = await stub.Notify(portal_pb2.NotifyRequest(message_id="m-1", notice=notice))
        again = await stub.Notify(portal_pb2.NotifyRequest(message_id="m-1", notice=notice))
        assert (first.duplicate, again.duplicate) == (False, True)
        assert len(await portal.book.of_transfer("T01-20260302-0000ABCD")) == 1
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # refused, so the gateway dead-letters it
            await stub.Notify(portal_pb2.NotifyRequest(message_id="m-2", notice=portal_pb2.ResultNotice()))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_wrong_id_number_reads_as_an_unknown_transfer_and_never_appears(with_portal: Demo) -> None:
    case = await transfer_in(with_portal, "submitted", 15)
    wrong = person_id(999)
    s1, unknown_page, _ = await _post(with_portal, "T01-20260302-0000ABCD", wrong)
    s2, wrong_page, _ = await _post(with_portal, case.transfer_id, wrong)
    assert s1 == s2 == 404
    assert unknown_page.replace("T01-20260302-0000ABCD", "") == wrong_page.replace(case.transfer_id, "")
    assert wrong not in wrong_page and "没有找到" in wrong_page


async def test_bad_input_names_each_field_in_chinese(with_portal: Demo) -> None:
    status, html, _ = await _post(with_portal, "12345", "11010519491231002")
    assert status == 400
    assert "请修改以下2处内容" in html
    assert 'aria-invalid="true"' in html and 'aria-describedby="transfer_id-hint transfer_id-error"' in html
    assert "身份证号码应为18位，您输入了17位" in html and "转移编号的格式不对" in html
    assert "11010519491231002" not in html  # the ID number is never written back
    async with aiohttp.ClientSession() as session:
        async with session.get(_page_url(with_portal, "/status")) as r:
            assert r.url.path == "/"  # a status is only the answer to the form
        async with session.get(_page_url(with_portal, "/status"), allow_redirects=False) as r:
            assert r.status == 303 and r.headers["X-Content-Type-Options"] == "nosniff"
        async with session.get(_page_url(with_portal, "/nowhere")) as r:
            assert r.status == 404 and "frame-ancestors" in r.headers["Content-Security-Policy"]


async def test_the_portal_refuses_a_visitor_after_five_failures_and_says_when_to_try_again(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    seconds = [0.0]
    portal = await start_portal(tmp_path / "p", ClientFailures(limit=5, window_s=900, clock=lambda: seconds[0]))
    demo = await start_demo(redis_url, clock, act=False, portal=portal)
    try:
        case = await transfer_in(demo, "submitted", 16)
        for _ in range(5):
            assert (await _post(demo, "T01-20260302-0000ABCD", person_id(1)))[0] == 404
        status, html, headers = await _post(demo, case.transfer_id, case.id_number)  # even the right data
        assert status == 429 and "15分钟后再试" in html and headers["Retry-After"] == "900"
        seconds[0] += 901
        assert (await _post(demo, case.transfer_id, case.id_number))[0] == 200
    finally:
        await _stop(demo)


async def test_the_gateways_guard_reaches_the_page_with_its_delay(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    portal = await start_portal(tmp_path / "p", ClientFailures(limit=1000))  # the portal's own guard stays out
    demo = await start_demo(redis_url, clock, act=False, portal=portal)
    try:
        case = await transfer_in(demo, "submitted", 17)
        limits = StatusQueryLimits()  # five failed queries of one transfer within 15 minutes
        for _ in range(limits.per_transfer):
            assert (await _post(demo, case.transfer_id, person_id(2)))[0] == 404
        status, html, headers = await _post(demo, case.transfer_id, case.id_number)
        assert status == 429 and "15分钟后再试" in html and headers["Retry-After"] == str(limits.window_s)
    finally:
        await _stop(demo)


async def test_parallel_guesses_get_no_more_tries_at_the_gateway_than_one_after_another(with_portal: Demo) -> None:
    case = await transfer_in(with_portal, "submitted", 19)
    limits = StatusQueryLimits()
    portal = (("x-sigw-participant", "portal:gov"),)

    async def guess(n: int) -> grpc.StatusCode:
        request = S.QueryTransferStatusRequest(transfer_id=case.transfer_id, id_number=person_id(100 + n))
        try:
            await with_portal.transfers.QueryTransferStatus(request, metadata=portal)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(guess(n) for n in range(4 * limits.per_transfer)))
    assert codes.count(grpc.StatusCode.NOT_FOUND) == limits.per_transfer  # every other one was refused untried
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 3 * limits.per_transfer


async def test_parallel_posts_get_no_more_tries_at_the_portal_than_one_after_another(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    portal = await start_portal(tmp_path / "p", ClientFailures(limit=3))
    demo = await start_demo(redis_url, clock, act=False, portal=portal)
    try:
        case = await transfer_in(demo, "submitted", 20)
        answers = await asyncio.gather(*(_post(demo, case.transfer_id, person_id(200 + n)) for n in range(12)))
        statuses = [status for status, _, _ in answers]
        assert statuses.count(404) == 3 and statuses.count(429) == 9
        assert (await _post(demo, case.transfer_id, case.id_number))[0] == 429  # this address waits now
    finally:
        await _stop(demo)


async def test_a_busy_gateway_reads_as_busy_not_as_a_lock(redis_url: str, clock: FakeClock, tmp_path: Path) -> None:
    portal = await start_portal(tmp_path / "p")
    demo = await start_demo(redis_url, clock, act=False, portal=portal, rate_per_s=1.0)  # bursts of 2 per caller
    try:
        case = await transfer_in(demo, "submitted", 21)
        for _ in range(2):
            assert (await _post(demo, case.transfer_id, case.id_number))[0] == 200
        status, html, headers = await _post(demo, case.transfer_id, case.id_number)
        assert status == 429 and "系统正忙" in html and "1秒后再试" in html and headers["Retry-After"] == "1"
        assert "查询失败的次数过多" not in html
        clock.advance(seconds=1)
        assert (await _post(demo, case.transfer_id, case.id_number))[0] == 200  # neither guard counted it
    finally:
        await _stop(demo)


def test_the_portal_forgets_quiet_visitors_once_their_window_passed() -> None:
    seconds = [0.0]
    failures = ClientFailures(limit=2, window_s=60, clock=lambda: seconds[0])
    for n in range(50):
        assert failures.attempt(f"10.0.0.{n}") == 0.0
    assert failures.clients() == 50
    seconds[0] = 61
    assert failures.attempt("10.0.1.1") == 0.0
    assert failures.clients() == 1
    assert failures.attempt("10.0.1.1") == 0.0 and failures.attempt("10.0.1.1") == 60.0  # two in the window
    failures.succeeded("10.0.1.1")
    assert failures.attempt("10.0.1.1") == 0.0  # a query that found its transfer is not a failure


async def test_the_status_reply_carries_the_applicants_view(with_portal: Demo) -> None:
    case = await transfer_in(with_portal, "funds_sent", 18)
    reply = await with_portal.transfers.QueryTransferStatus(
        S.QueryTransferStatusRequest(transfer_id=case.transfer_id, id_number=case.id_number),
        metadata=(("x-sigw-participant", "portal:gov"),),
    )
    status = reply.status
    assert status.kind_text == "失业保险关系转移" and status.state_text == "已转出，等待转入地办理转入"
    assert (status.source_region_name, status.target_region_name) == ("北京市", "上海市")
    assert status.acting_agency.name == "上海市社会保险经办机构" and status.acting_agency.phone == "12333"
    step = reply.transfer.steps[-1]
    assert status.due_date == step.due_date and status.working_days == step.working_days
    assert [h.text for h in status.history] == [
        "转入地经办机构受理了申请",
        "转入地经办机构向转出地发出了联系函",
        "转出地经办机构转出了参保信息和资金",
    ]
    assert reply.transfer.contact.mobile_masked == "138****5678"
    # parties see the contact masked too
    got = await with_portal.transfers.GetTransfer(S.GetTransferRequest(transfer_id=case.transfer_id), metadata=TARGET)
    assert got.transfer.contact.employer_mobile_masked == "139****4321"
