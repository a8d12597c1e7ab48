"""Redis: keys, one Lua script per state change, the codec, the audit chain, the embedded server; the
repositories of ``app.ports``."""

__all__: list[str] = []
