"""PKI, mutual-TLS credentials and field encryption."""

__all__: list[str] = []
