"""The development PKI: files, chains that verify against our CA (and not another), participants named in
certificates and read back, idempotent re-runs, expiry, and key file permissions."""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gateway.security import pki

PARTICIPANTS = [
    "agency:110000:hrss",
    "agency:110000:healthcare",
    "military:JUN001",
    "hospital:440300:H44030000001",
    "portal:gov",
    "operator:alice",
]
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    pki.init_pki(folder, PARTICIPANTS, now=NOW)
    return folder


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _client_verify(ca: x509.Certificate, leaf: x509.Certificate, at: datetime = NOW) -> None:
    PolicyBuilder().store(Store([ca])).time(at).build_client_verifier().verify(leaf, [])


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_init_creates_ca_gateway_and_participant_files(pki_dir: Path) -> None:
    expected = {"ca", "gateway", *(p.replace(":", "_") for p in PARTICIPANTS)}
    assert {p.stem for p in pki_dir.glob("*.pem")} == expected
    assert {p.stem for p in pki_dir.glob("*.key")} == expected
    assert (pki_dir / "agency_110000_hrss.pem").is_file()
    assert (pki_dir / "hospital_440300_H44030000001.key").is_file()
    assert not list(pki_dir.glob("*.tmp")), "no temporary files are left behind"


def test_init_returns_each_participants_files(tmp_path: Path) -> None:
    issued = pki.init_pki(tmp_path, ["agency:110000:hrss", " portal:gov "], now=NOW)
    assert set(issued) == {"agency:110000:hrss", "portal:gov"}, "names are returned in canonical form"
    identity = issued["agency:110000:hrss"]
    assert identity == pki.IssuedIdentity(
        "agency:110000:hrss", tmp_path / "agency_110000_hrss.pem", tmp_path / "agency_110000_hrss.key"
    )


def test_ca_is_a_ca(pki_dir: Path) -> None:
    ca = _cert(pki_dir / "ca.pem")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)  # self-signed
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"


@pytest.mark.parametrize("participant", PARTICIPANTS)
def test_participant_cert_verifies_against_the_ca(pki_dir: Path, participant: str) -> None:
    ca = _cert(pki_dir / "ca.pem")
    leaf = _cert(pki_dir / f"{participant.replace(':', '_')}.pem")
    assert leaf.issuer == ca.subject
    leaf.verify_directly_issued_by(ca)  # signature check with the CA's public key
    _client_verify(ca, leaf)  # a full client-auth chain validation (EKU, SAN, validity, constraints)
    assert leaf.signature_hash_algorithm is not None and leaf.signature_hash_algorithm.name == "sha256"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize("participant", PARTICIPANTS)
def test_participant_of_cert_round_trips_every_role(pki_dir: Path, participant: str) -> None:
    pem = (pki_dir / f"{participant.replace(':', '_')}.pem").read_bytes()
    assert pki.participant_of_cert(pem) == participant
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert pki.participant_of_cert(der) == participant


@pytest.mark.parametrize("participant", PARTICIPANTS)
def test_cert_names_participant_in_cn_and_uri(pki_dir: Path, participant: str) -> None:
    leaf = _cert(pki_dir / f"{participant.replace(':', '_')}.pem")
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == participant
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"sigw:participant:{participant}"]
    # A participant that serves also carries its own name, which the gateway expects when it dials it.
    own = [participant.replace(":", ".").lower() + ".participant.sigw"] if pki.serves(participant) else []
    assert san.get_values_for_type(x509.DNSName) == ["localhost", *own]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_server_auth_only_for_the_gateway_and_the_participants_it_calls(pki_dir: Path) -> None:
    both = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _eku(_cert(pki_dir / "gateway.pem")) == both
    assert _eku(_cert(pki_dir / "agency_110000_hrss.pem")) == both
    assert _eku(_cert(pki_dir / "agency_110000_healthcare.pem")) == both
    assert _eku(_cert(pki_dir / "portal_gov.pem")) == both  # it serves NotifyService
    for stem in ("military_JUN001", "hospital_440300_H44030000001", "operator_alice"):
        assert _eku(_cert(pki_dir / f"{stem}.pem")) == {ExtendedKeyUsageOID.CLIENT_AUTH}, stem


def test_gateway_and_agency_certs_verify_as_servers(pki_dir: Path) -> None:
    ca = _cert(pki_dir / "ca.pem")
    for stem in ("gateway", "agency_110000_hrss", "portal_gov"):
        leaf = _cert(pki_dir / f"{stem}.pem")
        for name in (DNSName("localhost"), IPAddress(ipaddress.ip_address("127.0.0.1"))):
            PolicyBuilder().store(Store([ca])).time(NOW).build_server_verifier(name).verify(leaf, [])
        with pytest.raises(VerificationError):
            PolicyBuilder().store(Store([ca])).time(NOW).build_server_verifier(DNSName("example.org")).verify(leaf, [])
    hospital = _cert(pki_dir / "hospital_440300_H44030000001.pem")
    with pytest.raises(VerificationError, match="EKU"):
        PolicyBuilder().store(Store([ca])).time(NOW).build_server_verifier(DNSName("localhost")).verify(hospital, [])


def test_gateway_cert_names_no_participant(pki_dir: Path) -> None:
    gateway = _cert(pki_dir / "gateway.pem")
    uris = gateway.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uris.get_values_for_type(x509.UniformResourceIdentifier) == [pki.GATEWAY_URI]
    with pytest.raises(ValueError):
        pki.participant_of_cert((pki_dir / "gateway.pem").read_bytes())


def test_custom_server_names(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, ["agency:310000:hrss"], server_names=["agency.sh.example", "10.1.2.3", "::1"], now=NOW)
    san = _cert(tmp_path / "agency_310000_hrss.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["agency.sh.example", "agency.310000.hrss.participant.sigw"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["10.1.2.3", "::1"]


def test_key_files_are_private_and_match_their_certs(pki_dir: Path) -> None:
    for key_path in pki_dir.glob("*.key"):
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, key_path.name
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert key.public_key() == _cert(key_path.with_suffix(".pem")).public_key(), key_path.name
    for cert_path in pki_dir.glob("*.pem"):
        assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644, cert_path.name


def test_key_files_are_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        pki.init_pki(tmp_path, ["portal:gov"], now=NOW)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "portal_gov.key").stat().st_mode) == 0o600


def test_second_run_reuses_the_ca_and_adds_only_missing_participants(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, ["agency:110000:hrss"], now=NOW)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    issued = pki.init_pki(tmp_path, ["agency:110000:hrss", "portal:gov"], now=NOW + timedelta(days=1))

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for name, content in before.items():
        assert after[name] == content, f"{name} was rewritten"
    assert set(after) - set(before) == {"portal_gov.pem", "portal_gov.key"}
    ca = _cert(tmp_path / "ca.pem")
    _client_verify(ca, _cert(issued["portal:gov"].cert_path), at=NOW + timedelta(days=1))
    _client_verify(ca, _cert(issued["agency:110000:hrss"].cert_path), at=NOW + timedelta(days=1))


def test_rerun_reissues_a_leaf_not_signed_by_the_ca(tmp_path: Path) -> None:
    other = tmp_path / "other"
    ours = tmp_path / "ours"
    pki.init_pki(other, ["portal:gov"], now=NOW)
    pki.init_pki(ours, [], now=NOW)
    for suffix in (".pem", ".key"):  # a stray certificate from another CA sits where ours should be
        (ours / f"portal_gov{suffix}").write_bytes((other / f"portal_gov{suffix}").read_bytes())

    issued = pki.init_pki(ours, ["portal:gov"], now=NOW)

    _client_verify(_cert(ours / "ca.pem"), _cert(issued["portal:gov"].cert_path))


def test_rerun_reissues_a_leaf_whose_key_is_missing_or_wrong(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, ["portal:gov", "operator:alice"], now=NOW)
    (tmp_path / "portal_gov.key").unlink()
    (tmp_path / "operator_alice.key").write_bytes((tmp_path / "gateway.key").read_bytes())
    gateway_before = (tmp_path / "gateway.pem").read_bytes()

    issued = pki.init_pki(tmp_path, ["portal:gov", "operator:alice"], now=NOW)

    for identity in issued.values():
        key = serialization.load_pem_private_key(identity.key_path.read_bytes(), password=None)
        assert key.public_key() == _cert(identity.cert_path).public_key(), identity.participant
    assert (tmp_path / "gateway.pem").read_bytes() == gateway_before


def test_incomplete_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, [], now=NOW)
    (tmp_path / "ca.key").unlink()
    ca_before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(ValueError, match=r"ca\.key"):
        pki.init_pki(tmp_path, ["portal:gov"], now=NOW)
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert not (tmp_path / "portal_gov.pem").exists()


def test_ca_key_must_match_ca_cert(tmp_path: Path) -> None:
    pki.init_pki(tmp_path / "a", [], now=NOW)
    pki.init_pki(tmp_path / "b", [], now=NOW)
    with pytest.raises(ValueError, match="does not belong"):
        pki.issue((tmp_path / "a" / "ca.pem").read_bytes(), (tmp_path / "b" / "ca.key").read_bytes(), "portal:gov")


def test_cert_from_another_ca_does_not_verify(tmp_path: Path, pki_dir: Path) -> None:
    pki.init_pki(tmp_path, ["agency:110000:hrss"], now=NOW)
    ours = _cert(pki_dir / "ca.pem")
    foreign = _cert(tmp_path / "agency_110000_hrss.pem")
    with pytest.raises(ValueError, match="subject does not match"):  # another CA has another (random) name
        foreign.verify_directly_issued_by(ours)
    assert foreign.signature_hash_algorithm is not None
    with pytest.raises(InvalidSignature):  # and, name aside, its signature does not verify with our CA's key
        public = ours.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(foreign.signature, foreign.tbs_certificate_bytes, ec.ECDSA(foreign.signature_hash_algorithm))
    with pytest.raises(VerificationError):
        _client_verify(ours, foreign)
    # ... even though it names the same participant
    assert pki.participant_of_cert((tmp_path / "agency_110000_hrss.pem").read_bytes()) == "agency:110000:hrss"


def test_issue_for_rotation(pki_dir: Path) -> None:
    ca_pem, ca_key = (pki_dir / "ca.pem").read_bytes(), (pki_dir / "ca.key").read_bytes()
    cert_pem, key_pem = pki.issue(ca_pem, ca_key, "hospital:440300:H44030000001", now=NOW, valid_days=30)
    cert = x509.load_pem_x509_certificate(cert_pem)
    _client_verify(_cert(pki_dir / "ca.pem"), cert)
    assert pki.participant_of_cert(cert_pem) == "hospital:440300:H44030000001"
    assert serialization.load_pem_private_key(key_pem, password=None).public_key() == cert.public_key()
    assert cert.not_valid_after_utc == NOW + timedelta(days=30)
    assert cert.not_valid_before_utc <= NOW
    assert _eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    old = _cert(pki_dir / "hospital_440300_H44030000001.pem")
    assert cert.serial_number != old.serial_number and cert.public_key() != old.public_key()


def test_issue_with_server_auth(pki_dir: Path) -> None:
    ca_pem, ca_key = (pki_dir / "ca.pem").read_bytes(), (pki_dir / "ca.key").read_bytes()
    cert_pem, _ = pki.issue(ca_pem, ca_key, "agency:440300:hrss", now=NOW, server=True)
    assert _eku(x509.load_pem_x509_certificate(cert_pem)) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    gateway_pem, _ = pki.issue_gateway(ca_pem, ca_key, now=NOW)
    x509.load_pem_x509_certificate(gateway_pem).verify_directly_issued_by(_cert(pki_dir / "ca.pem"))


def test_expired_certificate(pki_dir: Path) -> None:
    ca_pem, ca_key = (pki_dir / "ca.pem").read_bytes(), (pki_dir / "ca.key").read_bytes()
    past = datetime.now(UTC) - timedelta(days=10)
    cert_pem, _ = pki.issue(ca_pem, ca_key, "portal:gov", now=past, valid_days=1)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.not_valid_after_utc < datetime.now(UTC)
    assert cert.not_valid_after_utc == past.replace(microsecond=0) + timedelta(days=1)
    with pytest.raises(VerificationError):
        _client_verify(_cert(pki_dir / "ca.pem"), cert, at=datetime.now(UTC))


def test_leaf_never_outlives_its_ca(pki_dir: Path) -> None:
    ca = _cert(pki_dir / "ca.pem")
    cert_pem, _ = pki.issue(
        (pki_dir / "ca.pem").read_bytes(), (pki_dir / "ca.key").read_bytes(), "portal:gov", now=NOW, valid_days=99999
    )
    assert x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc == ca.not_valid_after_utc


@pytest.mark.parametrize(
    "bad", ["", "agency:11000:hrss", "agency:110000:pension", "nobody:x", "portal:", "portal:a:b", "gateway", "a b"]
)
def test_bad_participant_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        pki.init_pki(tmp_path, ["portal:gov", bad], now=NOW)
    assert not list(tmp_path.iterdir()), "nothing is written when a name is bad"
    pki.init_pki(tmp_path, [], now=NOW)
    with pytest.raises(ValueError):
        pki.issue((tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca.key").read_bytes(), bad)


def test_valid_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid_days"):
        pki.init_pki(tmp_path, ["portal:gov"], valid_days=0)


def test_participant_of_cert_rejects_garbage() -> None:
    with pytest.raises(ValueError, match=r"not an X\.509 certificate"):
        pki.participant_of_cert(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match=r"not an X\.509 certificate"):
        pki.participant_of_cert(b"\x30\x03\x02\x01\x01")


def test_participant_of_cert_falls_back_to_the_common_name(pki_dir: Path) -> None:
    ca = _cert(pki_dir / "ca.pem")
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "operator:bob")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    assert pki.participant_of_cert(cert.public_bytes(serialization.Encoding.PEM)) == "operator:bob"


def test_participant_from_auth_context(pki_dir: Path) -> None:
    pem = (pki_dir / "military_JUN001.pem").read_bytes()
    context = {
        "transport_security_type": [b"ssl"],
        "x509_common_name": [b"military:JUN001"],
        "x509_subject_alternative_name": [b"sigw:participant:military:JUN001", b"localhost", b"127.0.0.1"],
        "x509_pem_cert": [pem],
    }
    assert pki.participant_from_auth_context(context) == "military:JUN001"
    assert pki.participant_from_auth_context({}) is None
    assert pki.participant_from_auth_context({"transport_security_type": [b"insecure"]}) is None
    assert pki.participant_from_auth_context({"x509_pem_cert": []}) is None
    gateway = (pki_dir / "gateway.pem").read_bytes()
    assert pki.participant_from_auth_context({"x509_pem_cert": [gateway]}) is None
    assert pki.participant_from_auth_context({"x509_pem_cert": [b"garbage"]}) is None


def test_a_serving_certificate_without_its_participant_name_is_issued_again(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, ["agency:310000:hrss"], now=NOW)
    path = tmp_path / "agency_310000_hrss.pem"
    ca = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca.key").read_bytes()
    old, key = pki._issue_leaf(  # as issued before participants' own names
        *pki._load_ca(*ca),
        "agency:310000:hrss",
        "sigw:participant:agency:310000:hrss",
        ["localhost"],
        30,
        NOW,
        server=True,
        client=True,
    )
    path.write_bytes(old)
    (tmp_path / "agency_310000_hrss.key").write_bytes(key)
    pki.init_pki(tmp_path, ["agency:310000:hrss"], now=NOW)
    san = _cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "agency.310000.hrss.participant.sigw" in san.get_values_for_type(x509.DNSName)
