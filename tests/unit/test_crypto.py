"""Field encryption at rest: round trips, fresh nonces, contexts, tampering, key rotation, lookup hashes,
key files, and that no key material or plaintext ever shows up in an error."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.security.crypto import FieldCipher, generate_key_file, load_keys

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
LOOKUP = b"L" * 32
ID_NUMBER = "11010519491231002X"
CONTEXT = "transfer:T0001:person.id_number"
TOKEN = re.compile(r"v1:([A-Za-z0-9_.-]+):([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)")


def cipher(active: str = "k1", **keys: bytes) -> FieldCipher:
    return FieldCipher(keys or {"k1": K1}, active, lookup_key=LOOKUP)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _replace_char(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_round_trip() -> None:
    c = cipher()
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    assert c.decrypt(token, context=CONTEXT) == ID_NUMBER
    assert ID_NUMBER not in token


def test_token_format() -> None:
    token = cipher().encrypt("张三", context=CONTEXT)
    match = TOKEN.fullmatch(token)
    assert match is not None, token
    assert match.group(1) == "k1"
    nonce = base64.urlsafe_b64decode(match.group(2) + "==")
    sealed = base64.urlsafe_b64decode(match.group(3) + "==")
    assert len(nonce) == 12
    assert len(sealed) == len("张三".encode()) + 16  # ciphertext + GCM tag


def test_empty_plaintext_round_trips() -> None:
    c = cipher()
    assert c.decrypt(c.encrypt("", context=CONTEXT), context=CONTEXT) == ""


def test_two_encryptions_differ() -> None:
    c = cipher()
    tokens = {c.encrypt(ID_NUMBER, context=CONTEXT) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {t.split(":")[2] for t in tokens}
    assert len(nonces) == 50


def test_wrong_context_fails() -> None:
    c = cipher()
    token = c.encrypt(ID_NUMBER, context="transfer:T0001:person.id_number")
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(token, context="transfer:T0002:person.id_number")
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(token, context="transfer:T0001:person.name")


def test_context_is_required() -> None:
    c = cipher()
    with pytest.raises(ValueError, match="context"):
        c.encrypt(ID_NUMBER, context="")
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    with pytest.raises(ValueError, match="context"):
        c.decrypt(token, context="")


@pytest.mark.parametrize("part", [2, 3])
def test_tampered_token_fails(part: int) -> None:
    c = cipher()
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    parts = token.split(":")
    for index in range(len(parts[part])):
        tampered = parts.copy()
        tampered[part] = _replace_char(parts[part], index)
        with pytest.raises(ValueError):
            c.decrypt(":".join(tampered), context=CONTEXT)


def test_ciphertext_bit_flips_fail() -> None:
    c = cipher()
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    version, key_id, nonce, sealed_text = token.split(":")
    sealed = base64.urlsafe_b64decode(sealed_text + "==")
    for position in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[position] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
        with pytest.raises(ValueError, match="does not authenticate"):
            c.decrypt(f"{version}:{key_id}:{nonce}:{text}", context=CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "v2:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "v1:k1:AAAAAAAAAAAAAAAA",
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA:extra",
        "v1:k1:AAAA:AAAAAAAAAAAAAAAAAAAAAA",  # short nonce
        "v1:k1:AAAAAAAAAAAAAAAA:AAAA",  # shorter than a tag
        "v1:k1:AAAAAAAAAAAAAAAA:AAAA+AAAAAAAAAAAAAAAAA",  # not base64url
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==",  # padding is not written
        "v1:k 1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_tokens_fail(token: str) -> None:
    with pytest.raises(ValueError):
        cipher().decrypt(token, context=CONTEXT)


def test_non_canonical_base64_is_refused() -> None:
    c = cipher()
    token = c.encrypt("x", context=CONTEXT)  # 17 sealed bytes: the last base64url character has 2 unused bits
    head, sealed = token.rsplit(":", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sealed[-1])
    sibling = alphabet[last ^ 0b0001]  # same decoded bytes, different spelling
    assert base64.urlsafe_b64decode(sealed + "==") == base64.urlsafe_b64decode(sealed[:-1] + sibling + "==")
    with pytest.raises(ValueError, match="malformed"):
        c.decrypt(f"{head}:{sealed[:-1]}{sibling}", context=CONTEXT)


def test_rotation() -> None:
    old = cipher("k1", k1=K1)
    old_token = old.encrypt(ID_NUMBER, context=CONTEXT)

    rotated = cipher("k2", k1=K1, k2=K2)
    assert rotated.decrypt(old_token, context=CONTEXT) == ID_NUMBER
    new_token = rotated.encrypt(ID_NUMBER, context=CONTEXT)
    assert new_token.split(":")[1] == "k2"
    assert rotated.decrypt(new_token, context=CONTEXT) == ID_NUMBER
    assert rotated.active_key_id == "k2"
    with pytest.raises(ValueError, match="unknown key id 'k2'"):
        old.decrypt(new_token, context=CONTEXT)


def test_unknown_key_id_fails() -> None:
    token = cipher("k1", k1=K1).encrypt(ID_NUMBER, context=CONTEXT)
    with pytest.raises(ValueError, match="unknown key id 'k1'"):
        cipher("k2", k2=K2).decrypt(token, context=CONTEXT)


def test_key_id_cannot_be_swapped() -> None:
    """A token relabelled with another key id the cipher knows does not decrypt (and never decrypts wrongly)."""
    c = cipher("k1", k1=K1, k2=K2)
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(token.replace(":k1:", ":k2:", 1), context=CONTEXT)


def test_same_key_under_two_ids_still_binds_the_id() -> None:
    c = cipher("a", a=K1, b=K1)
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(token.replace(":a:", ":b:", 1), context=CONTEXT)


def test_lookup_hash() -> None:
    c = cipher()
    digest = c.lookup_hash(ID_NUMBER)
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert c.lookup_hash(ID_NUMBER) == digest
    assert c.lookup_hash("110105194912310038") != digest
    assert c.lookup_hash(ID_NUMBER.lower()) != digest  # callers normalise first
    assert cipher("k2", k1=K1, k2=K2).lookup_hash(ID_NUMBER) == digest, "stable across data-key rotation"
    assert cipher("k9", k9=K2).lookup_hash(ID_NUMBER) == digest, "independent of the data keys"
    other = FieldCipher({"k1": K1}, "k1", lookup_key=b"M" * 32)
    assert other.lookup_hash(ID_NUMBER) != digest, "depends on the lookup key"


@pytest.mark.parametrize(
    ("keys", "active", "lookup", "message"),
    [
        ({}, "k1", LOOKUP, "no data keys"),
        ({"k1": K1}, "k2", LOOKUP, "not among"),
        ({"k1": K1[:16]}, "k1", LOOKUP, "32 bytes"),
        ({"k1": K1}, "k1", b"short", "lookup key"),
        ({"bad id": K1}, "bad id", LOOKUP, "key id"),
        ({"k:1": K1}, "k:1", LOOKUP, "key id"),
        ({"active": K1}, "active", LOOKUP, "key id"),
    ],
)
def test_constructor_checks(keys: dict[str, bytes], active: str, lookup: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        FieldCipher(keys, active, lookup_key=lookup)
    assert b64(K1) not in str(caught.value)


def test_repr_shows_no_key_material() -> None:
    text = repr(cipher("k2", k1=K1, k2=K2))
    assert "k1" in text and "k2" in text
    for secret in (K1, K2, LOOKUP):
        assert secret.hex() not in text and b64(secret) not in text and repr(secret) not in text


def test_errors_never_contain_plaintext_or_keys() -> None:
    c = cipher()
    token = c.encrypt(ID_NUMBER, context=CONTEXT)
    with pytest.raises(ValueError) as caught:
        c.decrypt(token, context="other")
    with pytest.raises(ValueError) as bad_text:
        c.encrypt("\ud800" + ID_NUMBER, context=CONTEXT)  # a lone surrogate cannot be encoded
    for error in (caught.value, bad_text.value):
        message = str(error) + repr(error)
        assert ID_NUMBER not in message and "\\ud800" not in message and "\ud800" not in message
        assert K1.hex() not in message and b64(K1) not in message
        assert error.__cause__ is None and error.__suppress_context__


# --- key files -------------------------------------------------------------------------------------------------


def test_load_keys() -> None:
    text = f"""
# sigw keys
active = k2   # rotated on 2026-03-01
lookup={b64(LOOKUP)}

k1={b64(K1)}
k2={b64(K2)}
"""
    keys, active, lookup = load_keys(text)
    assert keys == {"k1": K1, "k2": K2}
    assert active == "k2"
    assert lookup == LOOKUP
    FieldCipher(keys, active, lookup_key=lookup)  # accepted as is


def test_generate_key_file() -> None:
    text = generate_key_file()
    keys, active, lookup = load_keys(text)
    assert active == "k1" and set(keys) == {"k1"}
    assert len(keys["k1"]) == 32 and len(lookup) >= 32
    assert keys["k1"] != lookup
    assert load_keys(generate_key_file())[0]["k1"] != keys["k1"], "random every time"
    c = FieldCipher.from_key_file(text)
    assert c.decrypt(c.encrypt(ID_NUMBER, context=CONTEXT), context=CONTEXT) == ID_NUMBER


SECRET = b64(bytes(range(200, 232)))  # appears in bad files below; must never appear in an error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no data keys"),
        (f"lookup={SECRET}\nk1={SECRET}\n", "no 'active"),
        (f"active=k1\nk1={SECRET}\n", "no 'lookup"),
        (f"active=k2\nlookup={SECRET}\nk1={SECRET}\n", "active key id has no key line"),
        (f"active=k1\nactive=k1\nlookup={SECRET}\nk1={SECRET}\n", "line 2: 'active' given twice"),
        (f"active=k1\nlookup={SECRET}\nlookup={SECRET}\nk1={SECRET}\n", "line 3: 'lookup' given twice"),
        (f"active=k1\nlookup={SECRET}\nk1={SECRET}\nk1={SECRET}\n", "line 4: this key id is given twice"),
        (f"active=k1\nlookup={SECRET}\nk1={SECRET[:-2]}\n", "line 3: the data key is not valid base64"),
        (f"active=k1\nlookup={SECRET}\nk1={SECRET}!\n", "line 3: the data key is not valid base64"),
        (f"active=k1\nlookup={SECRET[:-2]}\nk1={SECRET}\n", "line 2: the lookup key is not valid base64"),
        (f"active=k1\nlookup={b64(b'x' * 16)}\nk1={SECRET}\n", "line 2: the lookup key must be at least 32"),
        (f"active=k1\nlookup={SECRET}\nk1={b64(b'x' * 16)}\n", "line 3: a data key must be 32 bytes, not 16"),
        (f"active=k1\nlookup={SECRET}\n{SECRET}\n", "line 3: a key id is"),  # a pasted key, no id
        (f"active=k1\nlookup={SECRET}\n{SECRET[:-1]}\n", "line 3: expected name=value"),
        (f"active=k1\nlookup={SECRET}\n={SECRET}\n", "line 3: expected name=value"),
        (f"active=k1\nlookup={SECRET}\nk 1={SECRET}\n", "line 3: a key id is"),
        (f"active=k1\nlookup={SECRET}\n{SECRET[:8]}=\n", "line 3: "),
        (f"active={SECRET}\nlookup={SECRET}\nk1={SECRET}\n", "line 1: a key id is"),
    ],
)
def test_load_keys_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        load_keys(text)
    rendered = str(caught.value) + repr(caught.value)
    assert SECRET not in rendered and SECRET[:8] not in rendered and SECRET[:-2] not in rendered


# --- properties ------------------------------------------------------------------------------------------------

_PROPERTY_CIPHER = cipher("k2", k1=K1, k2=K2)


@given(plaintext=st.text(), context=st.text(min_size=1))
def test_round_trip_property(plaintext: str, context: str) -> None:
    token = _PROPERTY_CIPHER.encrypt(plaintext, context=context)
    assert TOKEN.fullmatch(token)
    assert _PROPERTY_CIPHER.decrypt(token, context=context) == plaintext


@given(plaintext=st.text(), context=st.text(min_size=1), other=st.text(min_size=1))
def test_other_context_never_decrypts_property(plaintext: str, context: str, other: str) -> None:
    token = _PROPERTY_CIPHER.encrypt(plaintext, context=context)
    if other != context:
        with pytest.raises(ValueError):
            _PROPERTY_CIPHER.decrypt(token, context=other)
