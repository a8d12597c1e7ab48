"""Revocation of participants' certificates, and the check every call's certificate passes.

The PKI folder's ``crl.pem`` is a standard X.509 certificate revocation list signed by the CA (``openssl crl
-in var/pki/crl.pem -text`` reads it). ``sigw pki revoke PARTICIPANT`` adds the participant's current
certificate to it, and ``sigw pki issue`` adds the one it replaces. gRPC's Python API takes no CRL, so the
gateway checks each call's verified peer certificate itself (:class:`CertificateCheck`, used by the identity
resolver): it must be issued directly by the CA (the CA's path length is 0: no intermediate, whatever the TLS
library would accept) and its serial must not be on the list. The list is read again when the file changes, at
most every ``RELOAD_S`` seconds, so a revocation takes effect in a running gateway without a restart.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from gateway.domain.errors import Unauthenticated

__all__ = ["CRL_FILE", "RELOAD_S", "CertificateCheck", "revoke", "revoked_serials"]

CRL_FILE = "crl.pem"
RELOAD_S = 1.0
"""How often a running gateway looks whether ``crl.pem`` changed."""
_CRL_VALID = timedelta(days=30)  # next_update, for tools that read the CRL; the gateway uses the newest file


def _load_cert(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def revoked_serials(ca_cert_pem: bytes, crl_pem: bytes) -> frozenset[int]:
    """The serials a CRL revokes; ``ValueError`` when it is not a CRL signed by this CA."""
    ca = _load_cert(ca_cert_pem)
    crl = x509.load_pem_x509_crl(crl_pem)
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise ValueError("the revocation list is not signed by this CA")
    return frozenset(entry.serial_number for entry in crl)


def revoke(folder: Path, certificates: Iterable[bytes], *, now: datetime | None = None) -> list[int]:
    """Add these certificates (PEM) to ``folder/crl.pem`` (made when missing), signed with the folder's CA;
    returns the serials newly revoked. ``ValueError`` for a certificate the CA did not issue."""
    moment = now or datetime.now(UTC)
    ca_pem = (folder / "ca.pem").read_bytes()
    ca = _load_cert(ca_pem)
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    path = folder / CRL_FILE
    known = revoked_serials(ca_pem, path.read_bytes()) if path.exists() else frozenset()
    previous = x509.load_pem_x509_crl(path.read_bytes()) if path.exists() else None
    fresh: list[int] = []
    for pem in certificates:
        cert = _load_cert(pem)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise ValueError(f"certificate {cert.serial_number:x} was not issued by this CA") from None
        if cert.serial_number not in known and cert.serial_number not in fresh:
            fresh.append(cert.serial_number)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(moment)
        .next_update(moment + _CRL_VALID)
    )
    for entry in previous or ():
        builder = builder.add_revoked_certificate(entry)
    for serial in fresh:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(moment).build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    temporary.replace(path)
    return fresh


class CertificateCheck:
    """Whether a verified peer certificate may stand for a participant: issued directly by the CA, and not
    revoked (``crl.pem`` re-read when it changes)."""

    def __init__(self, folder: Path, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self.monotonic = monotonic
        self._ca_pem = (folder / "ca.pem").read_bytes()
        self._ca = _load_cert(self._ca_pem)
        self._revoked: frozenset[int] = frozenset()
        self._stamp: tuple[int, int] | None = None
        self._looked = float("-inf")
        self._issued = functools.lru_cache(maxsize=4096)(self._serial_if_issued)
        self._reload()

    def _reload(self) -> None:
        path = self.folder / CRL_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._revoked, self._stamp = frozenset(), None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            # A list that does not verify is refused loudly (ValueError) rather than ignored.
            self._revoked = revoked_serials(self._ca_pem, path.read_bytes())
            self._stamp = stamp

    def _serial_if_issued(self, cert_bytes: bytes) -> int | None:
        try:
            cert = _load_cert(cert_bytes)
            cert.verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, InvalidSignature):
            return None
        return int(cert.serial_number)

    def check(self, cert_bytes: bytes) -> None:
        """``Unauthenticated`` when the certificate is not the CA's own issue or is revoked."""
        now = self.monotonic()
        if now - self._looked >= RELOAD_S:
            self._looked = now
            self._reload()
        serial = self._issued(cert_bytes)
        if serial is None:
            raise Unauthenticated(reason="NOT_ISSUED_BY_CA", message="the certificate is not issued by the CA itself")
        if serial in self._revoked:
            raise Unauthenticated(reason="CERTIFICATE_REVOKED", message="the certificate has been revoked")
