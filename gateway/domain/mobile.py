"""Mainland mobile numbers (手机号码), as a transfer's contact carries them: 11 digits starting with 1 and a
second digit 3-9. Kept encrypted at rest and masked everywhere but the notice a portal sends."""

from __future__ import annotations

import re

__all__ = ["is_mobile", "mask", "scrub"]

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def is_mobile(text: str) -> bool:
    return _MOBILE.fullmatch(text) is not None


def scrub(text: str) -> str:
    """``text`` with every mobile number in it (11 digits, not part of a longer number) masked."""
    return _IN_TEXT.sub(lambda m: mask(m.group(0)), text)


def mask(mobile: str) -> str:
    """``13812345678`` becomes ``138****5678``; anything else one ``*`` per character."""
    return mobile[:3] + "****" + mobile[7:] if is_mobile(mobile) else "*" * len(mobile)
