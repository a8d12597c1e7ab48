"""Who is calling: the one place that turns a call into a ``Participant``.

With mutual TLS (the default) the caller is the participant its client certificate names (a URI SAN
``sigw:participant:<participant>``, see ``gateway.security.pki``); the handshake has already refused callers with
no certificate, an expired one or one from another CA. A certificate naming a participant of a region the registry
does not know is refused here, and so is a hospital the registry does not list under that region (a hospital's code
is bound to its region: ``hospital:310000:H44030000001`` is nobody when H44030000001 is Shenzhen's). Only on a
plain-text loopback server started with ``--insecure --dev-identity`` may the caller name itself in the
``x-sigw-participant`` metadata instead (development and tests); the server says so loudly at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from gateway.domain.errors import Unauthenticated
from gateway.domain.participants import Participant, Role
from gateway.domain.regions import Hospital
from gateway.security import pki
from gateway.security.revocation import CertificateCheck

__all__ = ["METADATA_KEY", "IdentityResolver"]

METADATA_KEY = pki.PARTICIPANT_METADATA_KEY


class IdentityResolver:
    def __init__(
        self,
        dev_identity: bool,
        *,
        tls: bool = False,
        known_regions: frozenset[str] | None = None,
        hospitals: Mapping[str, Hospital] | None = None,
        certificates: CertificateCheck | None = None,
    ) -> None:
        self.dev_identity = dev_identity
        self.tls = tls
        self.known_regions = known_regions
        self.hospitals = hospitals
        self.certificates = certificates

    def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Participant:
        if self.tls:
            return self._of_certificate(pki.peer_certificate(context.auth_context() or {}))
        if not self.dev_identity:
            raise Unauthenticated(
                reason="NO_IDENTITY", message="no caller identity: this gateway accepts no unauthenticated calls"
            )
        for key, value in context.invocation_metadata() or ():
            if key == METADATA_KEY:
                return self._known(Participant.parse(value if isinstance(value, str) else value.decode()))
        raise Unauthenticated(reason="NO_IDENTITY", message=f"name the caller in the {METADATA_KEY} metadata")

    def rate_key(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """Who to count a call against for rate limits, before it is authorised: the certificate's participant,
        the claimed participant (development), or the peer address."""
        if self.tls:
            named = pki.participant_from_auth_context(context.auth_context() or {})
            if named:
                return named
        else:
            for key, value in context.invocation_metadata() or ():
                if key == METADATA_KEY:
                    return str(value)[:80]
        return f"peer:{context.peer()}"

    def http_caller(self, peer_der: bytes | None, claimed: str | None) -> Participant:
        """The caller of an HTTP request (the national interface): the verified peer certificate's participant,
        or in development the ``x-sigw-participant`` header."""
        if self.tls:
            return self._of_certificate(peer_der)
        if self.dev_identity and claimed:
            return self._known(Participant.parse(claimed))
        raise Unauthenticated(reason="NO_IDENTITY", message="no caller identity")

    def _of_certificate(self, cert: bytes | None) -> Participant:
        """The participant of a verified peer certificate (PEM or DER): issued by the CA itself, not revoked,
        naming a known participant."""
        named = pki.participant_of_peer(cert) if cert else None
        if cert is None or named is None:
            raise Unauthenticated(reason="NO_IDENTITY", message="the client certificate names no participant")
        if self.certificates is not None:
            self.certificates.check(cert)
        return self._known(Participant.parse(named))

    def _known(self, participant: Participant) -> Participant:
        if participant.region and self.known_regions is not None and participant.region not in self.known_regions:
            raise Unauthenticated(reason="UNKNOWN_PARTICIPANT", message="the certificate names an unknown participant")
        if participant.role is Role.HOSPITAL and self.hospitals is not None:
            listed = self.hospitals.get(participant.code)
            if listed is None or listed.region != participant.region:
                raise Unauthenticated(
                    reason="HOSPITAL_NOT_REGISTERED",
                    message=f"hospital {participant.code} is not registered under region {participant.region}",
                )
        return participant
