"""Mutual TLS between every participant and the gateway, and between the gateway and agencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.agency_client import AgencyClients
from adapters.portal.server import PortalServer, PortalSettings
from gateway._gen.sigw.v1 import (
    operator_pb2,
    operator_pb2_grpc,
    portal_pb2,
    portal_pb2_grpc,
    transfer_pb2,
    transfer_pb2_grpc,
)
from gateway.app.ports import AgencyCallFailed
from gateway.cli import main as sigw_main
from gateway.config import Settings
from gateway.domain.participants import AgencyKey, AgencyType, PortalKey
from gateway.domain.regions import Portal, Region, Registry
from gateway.security import pki, revocation
from gateway.security.tls import TlsFolder
from gateway.server import Gateway, check_transport, start_gateway
from tests.conftest import DEMO_REGIONS, FakeClock, demo_registry, start_demo_agencies
from tests.helpers import error_details, eventually, person_id
from tests.integration.test_transfer_flow import create_request

S = transfer_pb2


def sigw_cli(*args: str) -> int:
    return sigw_main(list(args))


PARTICIPANTS = ["agency:310000:hrss", "portal:gov", "operator:alice"]


@pytest.fixture
async def secured(tmp_path: Path, redis_url: str, clock: FakeClock) -> AsyncIterator[tuple[Gateway, TlsFolder]]:
    agencies = [f"agency:{code}:{t.slug}" for code in DEMO_REGIONS for t in AgencyType]
    pki.init_pki(tmp_path / "pki", [*agencies, *PARTICIPANTS])
    tls = TlsFolder(tmp_path / "pki")
    sims = await start_demo_agencies(tls=tls)
    registry = demo_registry(sims)
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        national_listen="127.0.0.1:0",
        redis_url=redis_url,
        calendar_file=None,
        tls_dir=tmp_path / "pki",
        shards=2,
    )
    # The revocation list is looked at again when the injected monotonic clock has moved (tests move it).
    gateway = await start_gateway(settings, registry, clock=clock, monotonic=lambda: clock().timestamp())
    sims.connect(gateway.target)
    yield gateway, tls
    await gateway.stop(grace_s=0.2)
    await sims.stop()


def stub(gateway: Gateway, credentials: grpc.ChannelCredentials) -> transfer_pb2_grpc.TransferServiceAsyncStub:
    return transfer_pb2_grpc.TransferServiceStub(grpc.aio.secure_channel(gateway.target, credentials))


async def test_a_transfer_runs_end_to_end_over_mutual_tls(secured: tuple[Gateway, TlsFolder]) -> None:
    gateway, tls = secured
    agency = stub(gateway, tls.channel_credentials("agency:310000:hrss"))
    t = (await agency.CreateTransfer(create_request())).transfer
    assert t.timeline[0].actor == "agency:310000:hrss"  # the certificate named the caller
    portal = stub(gateway, tls.channel_credentials("portal:gov"))
    seen: list[S.Transfer] = []

    async def completed() -> bool:
        request = S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id())
        seen.append((await portal.QueryTransferStatus(request)).transfer)
        return seen[-1].state == S.TRANSFER_STATE_COMPLETED

    await eventually(completed)
    status = seen[-1]
    # The simulated agencies were reached over mTLS and answered over mTLS.
    assert status.state == S.TRANSFER_STATE_COMPLETED
    assert [e.actor for e in status.timeline][1:] == ["agency:310000:hrss", "agency:110000:hrss", "agency:310000:hrss"]


async def test_metadata_cannot_override_the_certificate(secured: tuple[Gateway, TlsFolder]) -> None:
    gateway, tls = secured
    channel = grpc.aio.secure_channel(gateway.target, tls.channel_credentials("portal:gov"))
    ops = operator_pb2_grpc.OperatorServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ops.ListDeadLetters(
            operator_pb2.ListDeadLettersRequest(), metadata=(("x-sigw-participant", "operator:alice"),)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    operator = operator_pb2_grpc.OperatorServiceStub(
        grpc.aio.secure_channel(gateway.target, tls.channel_credentials("operator:alice"))
    )
    await operator.ListDeadLetters(operator_pb2.ListDeadLettersRequest())


async def refused_at_handshake(gateway: Gateway, credentials: grpc.ChannelCredentials | None) -> None:
    channel = (
        grpc.aio.secure_channel(gateway.target, credentials)
        if credentials
        else grpc.aio.insecure_channel(gateway.target)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await transfer_pb2_grpc.TransferServiceStub(channel).GetTransfer(
            S.GetTransferRequest(transfer_id="T00-20260302-00000000"), timeout=3
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # no call reached the server
    await channel.close()


async def test_no_certificate_another_ca_or_an_expired_one_is_refused_at_the_handshake(
    secured: tuple[Gateway, TlsFolder], tmp_path: Path
) -> None:
    gateway, tls = secured
    await refused_at_handshake(gateway, None)  # plain text
    await refused_at_handshake(gateway, grpc.ssl_channel_credentials(root_certificates=tls.ca))  # no client cert
    pki.init_pki(tmp_path / "other", ["portal:gov"])
    foreign = TlsFolder(tmp_path / "other")
    key, cert = foreign.pair("portal:gov")
    await refused_at_handshake(gateway, grpc.ssl_channel_credentials(tls.ca, key, cert))
    past = datetime.now(UTC) - timedelta(days=30)
    old_cert, old_key = pki.issue(
        (tls.folder / "ca.pem").read_bytes(), (tls.folder / "ca.key").read_bytes(), "portal:gov", valid_days=1, now=past
    )
    await refused_at_handshake(gateway, grpc.ssl_channel_credentials(tls.ca, old_key, old_cert))


async def test_a_valid_certificate_for_an_unknown_participant_is_unauthenticated(
    secured: tuple[Gateway, TlsFolder],
) -> None:
    gateway, tls = secured
    cert, key = pki.issue(
        (tls.folder / "ca.pem").read_bytes(), (tls.folder / "ca.key").read_bytes(), "agency:990000:hrss"
    )
    client = stub(gateway, grpc.ssl_channel_credentials(tls.ca, key, cert))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.GetTransfer(S.GetTransferRequest(transfer_id="T00-20260302-00000000"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(caught.value)[0] == "UNKNOWN_PARTICIPANT"


def test_plain_text_only_on_loopback_and_metadata_identity_only_with_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_transport(Settings(grpc_listen="0.0.0.0:50051", insecure=True))
    with pytest.raises(ValueError, match=r"not on 0\.0\.0\.0:8443"):  # the national interface too
        check_transport(Settings(national_listen="0.0.0.0:8443", insecure=True))
    with pytest.raises(ValueError, match="--insecure"):
        check_transport(Settings(dev_identity=True, tls_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="sigw pki init"):
        check_transport(Settings(tls_dir=tmp_path / "missing"))
    assert check_transport(Settings(grpc_listen="[::1]:50051", insecure=True)) is None


async def expect_unauthenticated(client: transfer_pb2_grpc.TransferServiceAsyncStub, reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.GetTransfer(S.GetTransferRequest(transfer_id="T00-20260302-00000000"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(caught.value)[0] == reason


async def test_a_revoked_certificate_is_refused_from_its_next_call(
    secured: tuple[Gateway, TlsFolder], clock: FakeClock
) -> None:
    """Issue 13 point 5: ``sigw pki revoke`` puts the certificate on the CA's list; the running gateway reads it
    and refuses the certificate, without a restart."""
    gateway, tls = secured
    portal = stub(gateway, tls.channel_credentials("portal:gov"))
    with pytest.raises(grpc.aio.AioRpcError) as before:
        await portal.GetTransfer(S.GetTransferRequest(transfer_id="T00-20260302-00000000"))
    assert before.value.code() != grpc.StatusCode.UNAUTHENTICATED  # the certificate is good so far
    assert sigw_cli("pki", "revoke", "portal:gov", "--tls-dir", str(tls.folder)) == 0
    assert revocation.revoked_serials(tls.ca, (tls.folder / "crl.pem").read_bytes())
    clock.advance(seconds=revocation.RELOAD_S)
    await expect_unauthenticated(portal, "CERTIFICATE_REVOKED")
    # Others are not affected.
    agency = stub(gateway, tls.channel_credentials("agency:310000:hrss"))
    assert (await agency.CreateTransfer(create_request())).transfer.transfer_id


async def test_reissuing_revokes_the_certificate_it_replaces(
    secured: tuple[Gateway, TlsFolder], clock: FakeClock
) -> None:
    gateway, tls = secured
    old_key, old_cert = tls.pair("operator:alice")
    assert sigw_cli("pki", "issue", "operator:alice", "--tls-dir", str(tls.folder)) == 0
    clock.advance(seconds=revocation.RELOAD_S)
    old = operator_pb2_grpc.OperatorServiceStub(
        grpc.aio.secure_channel(gateway.target, grpc.ssl_channel_credentials(tls.ca, old_key, old_cert))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await old.ListDeadLetters(operator_pb2.ListDeadLettersRequest())
    assert error_details(caught.value)[0] == "CERTIFICATE_REVOKED"
    new = operator_pb2_grpc.OperatorServiceStub(
        grpc.aio.secure_channel(gateway.target, tls.channel_credentials("operator:alice"))
    )
    await new.ListDeadLetters(operator_pb2.ListDeadLettersRequest())


def forged_chain(tls: TlsFolder, participant: str, named: str) -> tuple[bytes, bytes]:
    """A certificate naming ``named``, signed by an "intermediate" that ``participant``'s own leaf key signed:
    (key, chain) as an attacker holding one leaf would present them."""
    leaf_key_pem, leaf_pem = tls.pair(participant)
    leaf_key = serialization.load_pem_private_key(leaf_key_pem, password=None)
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    now = datetime.now(UTC)

    def cert(subject: str, issuer: x509.Name, signer: Any, public: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            uri = x509.UniformResourceIdentifier(pki.PARTICIPANT_URI_PREFIX + subject)
            builder = builder.add_extension(x509.SubjectAlternativeName([uri]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    middle_key, forged_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    middle = cert("intermediate", leaf.subject, leaf_key, middle_key.public_key(), ca=True)
    forged = cert(named, middle.subject, middle_key, forged_key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    chain = forged.public_bytes(pem) + middle.public_bytes(pem) + leaf.public_bytes(pem)
    key = forged_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, chain


async def test_a_chain_through_a_participants_leaf_is_refused(secured: tuple[Gateway, TlsFolder]) -> None:
    """Issue 13 point 5, path length: a portal's leaf cannot mint an operator. (The TLS handshake already
    refuses this chain; the identity check would refuse it too: see the unit tests of ``CertificateCheck``.)"""
    gateway, tls = secured
    key, chain = forged_chain(tls, "portal:gov", "operator:evil")
    await refused_at_handshake(gateway, grpc.ssl_channel_credentials(tls.ca, key, chain))


async def test_a_portal_takes_notices_from_the_gateways_certificate_only(tmp_path: Path) -> None:
    pki.init_pki(tmp_path / "pki", ["agency:310000:hrss", "portal:gov"])
    tls = TlsFolder(tmp_path / "pki")
    portal = PortalServer(
        PortalSettings(listen="127.0.0.1:0", notify_listen="127.0.0.1:0", tls=tls, data_dir=tmp_path / "portal")
    )
    await portal.start()
    notice = portal_pb2.NotifyRequest(
        message_id="m-1", notice=portal_pb2.ResultNotice(transfer_id="T01-20260302-0000ABCD", text="已办结")
    )
    target = f"127.0.0.1:{portal.notify_port}"
    try:
        for caller, allowed in (("agency:310000:hrss", False), (None, True)):  # None: the gateway
            async with grpc.aio.secure_channel(target, tls.channel_credentials(caller)) as channel:
                call = portal_pb2_grpc.NotifyServiceStub(channel).Notify(notice)
                if allowed:
                    assert not (await call).duplicate
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call
                    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert len(await portal.book.of_transfer("T01-20260302-0000ABCD")) == 1
    finally:
        await portal.stop()


async def test_the_gateway_takes_no_other_participants_certificate_for_the_one_it_dials(tmp_path: Path) -> None:
    """A portal's certificate (server auth, signed by the same CA) at the address the registry gives an agency:
    the gateway refuses to deliver the agency's notice there, and still delivers the portal's own."""
    pki.init_pki(tmp_path / "pki", ["agency:310000:hrss", "portal:gov"])
    tls = TlsFolder(tmp_path / "pki")
    portal = PortalServer(
        PortalSettings(listen="127.0.0.1:0", notify_listen="127.0.0.1:0", tls=tls, data_dir=tmp_path / "portal")
    )
    await portal.start()
    address = f"127.0.0.1:{portal.notify_port}"
    registry = Registry(
        {"310000": Region("310000", "上海市", {AgencyType.HRSS: address})}, {}, {"gov": Portal("gov", "平台", address)}
    )
    clients = AgencyClients(registry, tls.channel_credentials())
    notice = portal_pb2.NotifyRequest(
        message_id="m-1", notice=portal_pb2.ResultNotice(transfer_id="T01-20260302-0000ABCD", text="已办结")
    ).SerializeToString()
    try:
        with pytest.raises(AgencyCallFailed) as caught:
            await clients.deliver(AgencyKey("310000", AgencyType.HRSS), notice, timeout_s=5)
        assert caught.value.code == "UNAVAILABLE"  # the handshake fails: the certificate names portal:gov
        assert await clients.deliver(PortalKey("gov"), notice, timeout_s=5) is False
        assert len(await portal.book.of_transfer("T01-20260302-0000ABCD")) == 1
    finally:
        await clients.close()
        await portal.stop()
