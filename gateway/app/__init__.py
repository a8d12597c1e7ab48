"""Use cases: one module per aggregate, talking to the ports of ``app.ports``; no gRPC, Redis or protobuf."""

__all__: list[str] = []
