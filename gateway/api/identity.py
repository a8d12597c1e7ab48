"""Who is calling: the one place that turns a call into a ``Participant``.

Until mutual TLS arrives, the only source is development mode: the caller names itself in the
``x-sigw-participant`` metadata. It is off unless ``--dev-identity`` is given, and the server says so loudly
at start-up. With it off, every call that needs a caller is refused with UNAUTHENTICATED.
"""

from __future__ import annotations

import grpc

from gateway.domain.participants import Participant
from gateway.errors import Unauthenticated

METADATA_KEY = "x-sigw-participant"


class IdentityResolver:
    def __init__(self, dev_identity: bool) -> None:
        self.dev_identity = dev_identity

    def caller(self, context: grpc.aio.ServicerContext) -> Participant:
        if not self.dev_identity:
            raise Unauthenticated(
                reason="NO_IDENTITY", message="no caller identity: this gateway accepts no unauthenticated calls"
            )
        for key, value in context.invocation_metadata() or ():
            if key == METADATA_KEY:
                return Participant.parse(value if isinstance(value, str) else value.decode())
        raise Unauthenticated(reason="NO_IDENTITY", message=f"name the caller in the {METADATA_KEY} metadata")
