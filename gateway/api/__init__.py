"""The gRPC servicers and HTTP endpoints: identify the caller, validate, call one use case, convert the answer."""

__all__: list[str] = []
