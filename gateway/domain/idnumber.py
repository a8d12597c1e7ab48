"""Resident ID numbers (公民身份号码, GB 11643-1999): validation, masking and scrubbing.

An ID number has 18 characters::

    110105 19491231 002 X
    area   birth    seq check

* ``area``: the 6-digit administrative division code (GB/T 2260) where the number was issued;
* ``birth``: the birth date as ``YYYYMMDD``;
* ``seq``: a 3-digit sequence number, odd for men and even for women;
* ``check``: the ISO 7064 MOD 11-2 check character over the first 17 digits (``0``-``9`` or ``X``).

Decisions:

* Nothing is normalised here: no trimming, no full-width to half-width conversion, no upper-casing.
  A lower-case ``x`` as the check character is **invalid** (``"check character X must be
  upper-case"``); callers that want to be lenient must upper-case before validating, so that the
  number stored and sent to agencies is always the canonical form.
* The area code is only checked to be 6 digits, not looked up in GB/T 2260 (codes are retired
  and renamed, and a number stays valid for life).
* The birth date must be a real calendar date. Whether it is plausible (not in the future, not
  absurdly old) needs a clock and is the caller's business.
* Descriptions returned by :func:`validation_error` never contain the input, so they are safe to
  put in errors, logs and metrics. Use :func:`mask` / :func:`scrub` for anything else.
"""

from __future__ import annotations

import re
from datetime import date

from gateway.domain import mobile

__all__ = [
    "age_on",
    "birth_date",
    "check_character",
    "contains",
    "is_male",
    "is_valid",
    "make_id_number",
    "mask",
    "mask_name",
    "mask_text",
    "scrub",
    "validation_error",
]

#: ISO 7064 MOD 11-2 weights for positions 1..17 (2**(18-i) mod 11).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character indexed by (weighted sum mod 11).
_CHECK_CHARS = "10X98765432"

_ASCII_DIGITS = frozenset("0123456789")

#: What :func:`mask` returns for anything that is not a string.
_OPAQUE = "****"

# An ID-number-like run inside free text: 17 digits followed by a digit or X/x, not preceded by a
# digit and, when it ends in a digit, not followed by one (a longer digit run is some other number,
# e.g. a bank card). A run ending in X ends there whatever follows. Full-width digits and X
# (as typed by Chinese input methods, ０-９ and Ｘ/ｘ) count too, so they cannot slip past.
_DIGIT = "0-9\uff10-\uff19"
_SCRUB_RE = re.compile(rf"(?<![{_DIGIT}])[{_DIGIT}]{{17}}(?:[{_DIGIT}](?![{_DIGIT}])|[Xx\uff38\uff58])")


def _is_ascii_digits(text: str) -> bool:
    return all(c in _ASCII_DIGITS for c in text)


def check_character(first17: str) -> str:
    """The MOD 11-2 check character (``"0"``-``"9"`` or ``"X"``) for the first 17 digits.

    Raises ``ValueError`` (whose message does not contain the input) unless ``first17`` is exactly
    17 ASCII digits.
    """
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("first17 must be exactly 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def validation_error(id_number: str) -> str | None:
    """``None`` if ``id_number`` is a valid ID number, else a short description of the first problem.

    The description never contains the input or any part of it. Problems are checked in order:
    length, character classes (lower-case ``x`` gets its own description), birth date, check
    character.
    """
    if not isinstance(id_number, str):
        return "must be a string"
    if len(id_number) != 18:
        return "must be 18 characters"
    body, last = id_number[:17], id_number[17]
    if not _is_ascii_digits(body):
        return "must be 17 digits followed by a digit or X"
    if last == "x":
        return "check character X must be upper-case"
    if last != "X" and last not in _ASCII_DIGITS:
        return "must be 17 digits followed by a digit or X"
    try:
        date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return "birth date is not a real date"
    if check_character(body) != last:
        return "check character does not match"
    return None


def is_valid(id_number: str) -> bool:
    """Whether ``id_number`` is a valid ID number (see :func:`validation_error`)."""
    return validation_error(id_number) is None


def birth_date(id_number: str) -> date:
    """The birth date an ID number carries (digits 7-14); the check character is not verified. Raises
    ``ValueError`` (without the input) unless the first 17 characters are ASCII digits with a real date."""
    if not isinstance(id_number, str) or len(id_number) != 18 or not _is_ascii_digits(id_number[:17]):
        raise ValueError("not an ID number")
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        raise ValueError("an ID number without a real birth date") from None


def is_male(id_number: str) -> bool:
    """Whether the sequence number (digit 17) is odd, which GB 11643 gives to men. Raises like :func:`birth_date`."""
    birth_date(id_number)
    return int(id_number[16]) % 2 == 1


def age_on(id_number: str, day: date) -> int:
    """Full years of age (周岁) on ``day``: the birthday itself completes a year; a 29 February birthday is
    completed on 1 March in a common year. Raises like :func:`birth_date`."""
    born = birth_date(id_number)
    before_birthday = (day.month, day.day) < (born.month, born.day)
    return day.year - born.year - (1 if before_birthday else 0)


def mask(id_number: str) -> str:
    """The ID number with only its first 4 and last 4 characters shown; never raises.

    ``"110101199003071234"`` becomes ``"1101**********1234"``. Any 18-character string is masked
    that way whether or not it is valid. Any other string (wrong length, empty) becomes one ``*``
    per character, revealing only its length; a non-string becomes ``"****"``.
    """
    if not isinstance(id_number, str):
        return _OPAQUE
    if len(id_number) != 18:
        return "*" * len(id_number)
    return id_number[:4] + "*" * 10 + id_number[14:]


def scrub(text: str) -> str:
    """``text`` with every ID-number-like run replaced by its :func:`mask`; other text is unchanged.

    A run is 17 digits followed by a digit or ``X``/``x``, not part of a longer run of digits.
    The check character is not verified: anything that looks like an ID number is masked. Full-width
    digits and ``Ｘ``/``ｘ`` are treated like their ASCII forms. Old 15-digit numbers
    (GB 11643-1989) are not recognised.
    """
    return _SCRUB_RE.sub(lambda m: mask(m.group(0)), text)


def contains(text: str) -> bool:
    """Whether ``text`` holds anything shaped like an ID number (what :func:`scrub` would mask): identifier
    fields (request ids, msgids, visit ids, table and voucher numbers) refuse such a value, since an identifier
    is kept in the clear and in key names."""
    return _SCRUB_RE.search(text) is not None


def mask_name(name: str) -> str:
    """A person's name masked for free text: the family name kept (``张*``, ``欧阳**``: first character)."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def mask_text(text: str, name: str = "") -> str:
    """Free text (a note, a reason) as it is stored and shown: ID numbers and mobile numbers masked, and the
    person's own name (``name``, when it has two characters or more) masked wherever it appears."""
    masked = mobile.scrub(scrub(text))
    if len(name) >= 2:
        masked = masked.replace(name, mask_name(name))
    return masked


def make_id_number(area: str, birth: date, sequence: int) -> str:
    """A valid ID number for ``area`` (6 ASCII digits), ``birth`` and ``sequence`` (0-999; odd = male).

    For tests and the simulator. Raises ``ValueError`` on bad arguments.
    """
    if len(area) != 6 or not _is_ascii_digits(area):
        raise ValueError("area must be exactly 6 ASCII digits")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 999:
        raise ValueError("sequence must be an integer from 0 to 999")
    first17 = f"{area}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return first17 + check_character(first17)
