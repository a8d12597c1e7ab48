"""The edges: the gateway's client for the agencies, and the simulated agency used by the demo and the tests."""

__all__: list[str] = []
