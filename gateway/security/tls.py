"""Mutual-TLS credentials from a PKI folder made by ``sigw pki init`` (see ``gateway.security.pki``).

The folder holds ``ca.pem``, the gateway's ``gateway.pem``/``gateway.key`` and one ``<participant>.pem``/``.key``
per participant (``agency_110000_hrss.pem``…). Every connection is mutually authenticated: the gateway refuses a
caller with no certificate, an expired one or one from another CA at the handshake, and calls agencies with its
own certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

from gateway.security import pki

__all__ = ["TlsFolder"]


@dataclass(frozen=True)
class TlsFolder:
    folder: Path

    @property
    def ca(self) -> bytes:
        return (self.folder / "ca.pem").read_bytes()

    def exists(self) -> bool:
        return (self.folder / "ca.pem").exists() and (self.folder / "gateway.pem").exists()

    def pair(self, participant: str | None) -> tuple[bytes, bytes]:
        """(key, certificate) of a participant, or of the gateway for None."""
        stem = "gateway" if participant is None else pki.file_stem(participant)
        return (self.folder / f"{stem}.key").read_bytes(), (self.folder / f"{stem}.pem").read_bytes()

    def expiries(self) -> dict[str, float]:
        """When the CA's and the gateway's certificates expire (Unix seconds), for those present."""
        found = {}
        for name in ("ca", "gateway"):
            path = self.folder / f"{name}.pem"
            if path.exists():
                cert = x509.load_pem_x509_certificate(path.read_bytes())
                found[name] = cert.not_valid_after_utc.timestamp()
        return found

    def has(self, participant: str) -> bool:
        return (self.folder / f"{pki.file_stem(participant)}.pem").exists()

    def server_credentials(self, participant: str | None = None) -> grpc.ServerCredentials:
        key, cert = self.pair(participant)
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=self.ca, require_client_auth=True)

    def server_ssl_context(self) -> ssl.SSLContext:
        """The same mutual TLS for an HTTPS server (the national interface): the gateway's certificate, and a
        client certificate from this CA required at the handshake."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.folder / "ca.pem"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(self.folder / "gateway.pem", self.folder / "gateway.key")
        return context

    def client_ssl_context(self, participant: str) -> ssl.SSLContext:
        """A participant's HTTPS client context (tests, examples): its certificate, the gateway checked against
        the CA."""
        context = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        stem = pki.file_stem(participant)
        context.load_cert_chain(self.folder / f"{stem}.pem", self.folder / f"{stem}.key")
        return context

    def channel_credentials(self, participant: str | None = None) -> grpc.ChannelCredentials:
        key, cert = self.pair(participant)
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=key, certificate_chain=cert)
