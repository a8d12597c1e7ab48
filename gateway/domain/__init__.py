"""The domain: pure rules, no I/O. Plain data in, plain data out; errors are ``domain.errors``."""

__all__: list[str] = []
