"""Relationship transfers (Arts. 12-17): kinds and their rules, the state machine, the pension amounts, where the
relationship stays and which region pays, medical continuity, unemployment."""

__all__: list[str] = []
