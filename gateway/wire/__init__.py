"""The contract's mapping (``sigw.v1``): protobuf messages to validated domain records and back, and domain errors
to ``google.rpc.Status``. Shared by the servicers and the adapters."""

__all__: list[str] = []
