"""A development PKI for mutual TLS: one CA, the gateway's certificate and one certificate per participant.

Every certificate names its participant twice: as the subject common name and as a URI subject alternative
name ``sigw:participant:<participant>`` (``sigw:participant:agency:110000:hrss``). ``participant_of_cert``
reads the URI name (falling back to the common name), so a server learns who is calling from the TLS
handshake alone (``participant_from_auth_context``).

Layout of the folder ``init_pki`` fills (participant ``:`` written as ``_`` in file names)::

    ca.pem, ca.key                            the CA (basicConstraints CA:true, keyUsage keyCertSign)
    gateway.pem, gateway.key                  the gateway: server and client auth (it also calls agencies)
    agency_110000_hrss.pem, ....key           agencies, portals: client and server auth (they serve the gateway)
    hospital_440300_H44030000001.pem, ....key every other participant: client auth only

Keys are EC P-256 in unencrypted PKCS#8 PEM, written with mode 0600; signatures are ECDSA with SHA-256.
This is for development and tests: production certificates come from a real CA.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.domain.errors import Unauthenticated
from gateway.domain.participants import Participant, Role

__all__ = [
    "CA_VALID_DAYS",
    "DEFAULT_SERVER_NAMES",
    "DEFAULT_VALID_DAYS",
    "GATEWAY_URI",
    "PARTICIPANT_METADATA_KEY",
    "PARTICIPANT_URI_PREFIX",
    "IssuedIdentity",
    "canonical_participant",
    "file_stem",
    "init_pki",
    "issue",
    "issue_gateway",
    "participant_from_auth_context",
    "participant_of_cert",
    "participant_of_peer",
    "peer_certificate",
    "peer_is_gateway",
    "serves",
]

PARTICIPANT_METADATA_KEY = "x-sigw-participant"
"""Where a development caller names itself (a gateway in ``--dev-identity`` mode reads it; never in production)."""

PARTICIPANT_URI_PREFIX = "sigw:participant:"
"""Prefix of the URI subject alternative name that carries the participant."""

GATEWAY_URI = "sigw:gateway"
"""URI subject alternative name of the gateway's own certificate (it is no participant)."""

DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1")
DEFAULT_VALID_DAYS = 365
CA_VALID_DAYS = 3650
"""The CA outlives its leaves; a leaf is never valid beyond its CA."""

_ORGANIZATION = "sigw development PKI"
_GATEWAY_CN = "sigw-gateway"
_CLOCK_SKEW = timedelta(minutes=5)
"""Leaves are valid from a little before ``now`` so a peer whose clock lags slightly accepts them."""


@dataclass(frozen=True)
class IssuedIdentity:
    """One participant's certificate and key files."""

    participant: str
    cert_path: Path
    key_path: Path


# --- public API -------------------------------------------------------------------------------------------------


def canonical_participant(text: str) -> str:
    """The participant's canonical written form; ``ValueError`` when ``text`` names no valid participant."""
    try:
        return str(Participant.parse(text))
    except Unauthenticated:
        raise ValueError("not a valid participant name") from None


def file_stem(participant: str) -> str:
    """The file name (without extension) of a participant's certificate and key: ``agency_110000_hrss``."""
    return canonical_participant(participant).replace(":", "_")


def init_pki(
    folder: Path,
    participants: Sequence[str],
    *,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: datetime | None = None,
) -> dict[str, IssuedIdentity]:
    """Create (or complete) a development PKI in ``folder``; returns each participant's files, by participant.

    Idempotent: an existing CA is reused, never overwritten, and certificates already there (and signed by that
    CA) are kept, so re-running only adds what is missing. A freshly created CA reissues every certificate.
    ``ValueError`` for a bad participant name, or when only one of ``ca.pem`` / ``ca.key`` exists or they do not
    match (the CA is then left alone rather than silently replaced).
    """
    names = [canonical_participant(p) for p in participants]  # validate every name before writing anything
    _check_valid_days(valid_days)
    moment = _utc(now)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    ca_cert_path, ca_key_path = folder / "ca.pem", folder / "ca.key"
    if ca_cert_path.exists() != ca_key_path.exists():
        raise ValueError(f"incomplete CA in {folder}: need both ca.pem and ca.key (or neither, to create one)")
    fresh_ca = not ca_cert_path.exists()
    if fresh_ca:
        (folder / "crl.pem").unlink(missing_ok=True)  # a list signed by an earlier CA means nothing now
        ca_cert_pem, ca_key_pem = _new_ca(moment)
        _write_private(ca_key_path, ca_key_pem)
        _write_public(ca_cert_path, ca_cert_pem)
    else:
        ca_cert_pem, ca_key_pem = ca_cert_path.read_bytes(), ca_key_path.read_bytes()
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)

    def ensure(stem: str, common_name: str, uri: str, *, server: bool, names: Sequence[str]) -> tuple[Path, Path]:
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
        if fresh_ca or not _usable_leaf(cert_path, key_path, ca_cert, names):
            cert_pem, key_pem = _issue_leaf(
                ca_cert, ca_key, common_name, uri, names, valid_days, moment, server=server, client=True
            )
            _write_private(key_path, key_pem)
            _write_public(cert_path, cert_pem)
        return cert_path, key_path

    ensure("gateway", _GATEWAY_CN, GATEWAY_URI, server=True, names=server_names)
    issued: dict[str, IssuedIdentity] = {}
    for name in dict.fromkeys(names):
        cert_path, key_path = ensure(
            file_stem(name),
            name,
            PARTICIPANT_URI_PREFIX + name,
            server=serves(name),
            names=_names_of(name, server_names, server=serves(name)),
        )
        issued[name] = IssuedIdentity(name, cert_path, key_path)
    return issued


def issue(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    participant: str,
    *,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: datetime | None = None,
    server: bool = False,
) -> tuple[bytes, bytes]:
    """A new certificate and key (both PEM) for ``participant``, signed by the given CA: for rotation.

    Always client auth; ``server=True`` adds server auth (agencies get it from ``init_pki`` automatically).
    """
    name = canonical_participant(participant)
    _check_valid_days(valid_days)
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    return _issue_leaf(
        ca_cert,
        ca_key,
        name,
        PARTICIPANT_URI_PREFIX + name,
        _names_of(name, server_names, server=server),
        valid_days,
        _utc(now),
        server=server,
        client=True,
    )


def issue_gateway(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    *,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """A new gateway certificate and key (both PEM; server and client auth), for rotation."""
    _check_valid_days(valid_days)
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    return _issue_leaf(
        ca_cert, ca_key, _GATEWAY_CN, GATEWAY_URI, server_names, valid_days, _utc(now), server=True, client=True
    )


def participant_of_cert(cert_pem_or_der: bytes) -> str:
    """The participant a certificate (PEM or DER) names: its ``sigw:participant:`` URI, else its common name.

    ``ValueError`` when the bytes are no certificate, name several different participants, or name none
    (the gateway's own certificate names none). This reads the name only: the TLS handshake (or the caller)
    must have verified the certificate against the CA.
    """
    cert = _load_cert(cert_pem_or_der)
    uris = _uris(cert)
    named = {u[len(PARTICIPANT_URI_PREFIX) :] for u in uris if u.startswith(PARTICIPANT_URI_PREFIX)}
    if len(named) > 1:
        raise ValueError("certificate names more than one participant")
    if named:
        return canonical_participant(named.pop())
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(common_names) != 1:
        raise ValueError("certificate names no participant")
    value = common_names[0].value
    return canonical_participant(value if isinstance(value, str) else value.decode("utf-8", "replace"))


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def peer_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> bytes | None:
    """The verified peer certificate (PEM) of a gRPC call: after a mutual-TLS handshake gRPC puts it under
    ``x509_pem_cert``."""
    pem = next(iter(auth_context.get("x509_pem_cert") or ()), None)
    return bytes(pem) if pem else None


def peer_is_gateway(auth_context: Mapping[str, Iterable[bytes]]) -> bool:
    """Whether the verified peer certificate of a gRPC call is the gateway's (its ``sigw:gateway`` URI and no
    participant's): how an agency tells that a call comes from sigw and no one else."""
    pem = peer_certificate(auth_context)
    if not pem:
        return False
    try:
        uris = _uris(_load_cert(bytes(pem)))
    except ValueError:
        return False
    return GATEWAY_URI in uris and not any(u.startswith(PARTICIPANT_URI_PREFIX) for u in uris)


def participant_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The participant of the peer certificate in a gRPC ``context.auth_context()``; ``None`` when there is none.

    ``None`` too when that certificate names no valid participant (for example the gateway's own certificate), so
    callers treat every ``None`` as "unauthenticated".
    """
    pem = peer_certificate(auth_context)
    return participant_of_peer(pem) if pem else None


@functools.lru_cache(maxsize=4096)
def participant_of_peer(cert_pem_or_der: bytes) -> str | None:
    """A verified peer certificate's participant (PEM from gRPC, DER from an HTTPS server), parsed once per
    certificate (every call on a connection presents the same one) and remembered for the next calls; ``None``
    when it names no valid participant."""
    try:
        return participant_of_cert(cert_pem_or_der)
    except ValueError:
        return None


# --- internals --------------------------------------------------------------------------------------------------


def serves(participant: str) -> bool:
    """Agencies serve ``RegionAgencyService`` and portals ``NotifyService``, so their certificates allow server
    auth too."""
    return Participant.parse(participant).role in (Role.AGENCY, Role.PORTAL)


PARTICIPANT_HOST_SUFFIX = ".participant.sigw"


def participant_host(participant: str) -> str:
    """The DNS name a serving participant's certificate carries besides its addresses, and the name the gateway
    expects when it dials that participant (``grpc.ssl_target_name_override``): so a certificate of one
    participant cannot serve as another's, whatever address the registry gives. ``agency:310000:hrss`` is
    ``agency.310000.hrss.participant.sigw``."""
    return canonical_participant(participant).replace(":", ".").lower() + PARTICIPANT_HOST_SUFFIX


def _names_of(participant: str, server_names: Sequence[str], *, server: bool) -> list[str]:
    return [*server_names, participant_host(participant)] if server else list(server_names)


def _check_valid_days(valid_days: int) -> None:
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")


def _utc(now: datetime | None) -> datetime:
    """``now`` (default: the current time) in UTC, whole seconds (certificates carry no fractions); naive = UTC."""
    if now is None:
        now = datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return now.replace(microsecond=0)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(now: datetime) -> tuple[bytes, bytes]:
    key = _new_key()
    # A random suffix tells two development CAs apart in error messages and in `openssl x509 -text`.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"sigw development CA {secrets.token_hex(4)}"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _load_cert(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError("not an X.509 certificate") from None


def _load_ca(ca_cert_pem: bytes, ca_key_pem: bytes) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = _load_cert(ca_cert_pem)
    try:
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the CA key is not an unencrypted PEM private key") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    if ca_key.public_key() != ca_cert.public_key():
        raise ValueError("the CA key does not belong to the CA certificate")
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("the CA certificate is not a CA (basicConstraints CA:true missing)")
    return ca_cert, ca_key


def _san(uri: str, server_names: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    for server_name in dict.fromkeys(server_names):
        address = _ip(server_name)
        names.append(x509.IPAddress(address) if address is not None else x509.DNSName(server_name))
    return x509.SubjectAlternativeName(names)


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    uri: str,
    server_names: Sequence[str],
    valid_days: int,
    now: datetime,
    *,
    server: bool,
    client: bool,
) -> tuple[bytes, bytes]:
    key = _new_key()
    public = key.public_key()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    not_after = min(now + timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    not_before = min(now - _CLOCK_SKEW, not_after)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_san(uri, server_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _usable_leaf(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: Sequence[str]) -> bool:
    """Whether an existing certificate + key pair can be kept: both there, the certificate signed by our CA and
    naming the DNS names it should (certificates from before participant host names get replaced), and the key
    the certificate's."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = _load_cert(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    dns = set(san.get_values_for_type(x509.DNSName))
    return key.public_key() == cert.public_key() and {n for n in names if _ip(n) is None} <= dns


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A server name that is an IP address (an ``IPAddress`` SAN), else None (a ``DNSName``)."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with ``mode`` (so a key is never readable by others, not even
    briefly), then rename it into place."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have removed bits; keys must end up exactly 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
