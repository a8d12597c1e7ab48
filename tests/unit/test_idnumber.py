"""Resident ID numbers: check character, validation, masking, scrubbing (pure, no I/O)."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.idnumber import (
    check_character,
    is_valid,
    make_id_number,
    mask,
    scrub,
    validation_error,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

# Hand-computed: weighted sum of the first 17 digits, sum mod 11, index into "10X98765432".
KNOWN_VALID = [
    # 1,1,0,1,0,5,1,9,4,9,1,2,3,1,0,0,2:
    # 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2 -> "X"
    "11010519491231002X",
    # 1,1,0,1,0,1,1,9,9,0,0,3,0,7,1,2,3:
    # 7+9+0+5+0+4+2+9+54+0+0+27+0+35+8+8+6 = 174; 174 mod 11 = 9 -> "3"
    "110101199003071233",
    # 4,4,0,3,0,5,1,9,8,5,1,1,1,5,0,2,3:
    # 28+36+0+15+0+20+2+9+48+15+7+9+10+25+0+8+6 = 238; 238 mod 11 = 7 -> "5"
    "440305198511150235",
    # leap day 2000-02-29; 3,2,0,1,0,2,2,0,0,0,0,2,2,9,0,1,8:
    # 21+18+0+5+0+8+4+0+0+0+0+18+20+45+0+4+16 = 159; 159 mod 11 = 5 -> "7"
    "320102200002290187",
    # 5,1,0,1,0,4,1,9,7,8,0,6,0,1,0,0,4:
    # 35+9+0+5+0+16+2+9+42+24+0+54+0+5+0+0+8 = 209; 209 mod 11 = 0 -> "1"
    "510104197806010041",
    # same first 14 (sum 201), then 0,1,8: 201+0+4+16 = 221; 221 mod 11 = 1 -> "0"
    "510104197806010180",
]

DESCRIPTIONS = {
    "must be a string",
    "must be 18 characters",
    "must be 17 digits followed by a digit or X",
    "check character X must be upper-case",
    "birth date is not a real date",
    "check character does not match",
}


def weighted_check(first17: str) -> str:
    """Independent oracle: the textbook formula, written out again."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


# --- check character -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_check_character_of_known_numbers(number: str) -> None:
    assert check_character(number[:17]) == number[17]


@pytest.mark.parametrize("bad", ["", "1101051949123100", "110105194912310020", "1101051949123100A", "1" * 16 + "X"])
def test_check_character_rejects_anything_but_17_digits(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        check_character(bad)
    assert bad == "" or bad not in str(info.value)


def test_check_character_rejects_full_width_digits() -> None:
    # "１" (U+FF11) is a digit to str.isdigit but not an ASCII digit
    with pytest.raises(ValueError):
        check_character("\uff11" * 17)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_known_valid_numbers(number: str) -> None:
    assert validation_error(number) is None
    assert is_valid(number)


@pytest.mark.parametrize(
    "bad",
    ["", "1101051949123100", "11010519491231002", "11010519491231002X0", " 11010519491231002X", "1" * 40],
)
def test_wrong_length(bad: str) -> None:
    assert validation_error(bad) == "must be 18 characters"
    assert not is_valid(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "110105194912310021",  # 167 mod 11 = 2 -> must be X, not 1
        "110101199003071234",  # 174 mod 11 = 9 -> must be 3, not 4
        "440305198511150236",  # 238 mod 11 = 7 -> must be 5, not 6
        "11010119900307123X",  # X where 3 is due
    ],
)
def test_bad_check_character(bad: str) -> None:
    assert validation_error(bad) == "check character does not match"
    assert not is_valid(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "1101051949123100AX",  # letter in the body
        "1101051949123100X2",  # X anywhere but last
        "11010519491231002Y",  # bad check character
        "1101051949-231002X",  # punctuation
        "11010519491231 02X",  # space inside
        "\uff11" + "1010519491231002X",  # a full-width digit "１" first
        "\u0661" + "1010519491231002X",  # an Arabic-Indic digit "١" (str.isdigit is True)
    ],
)
def test_non_digit(bad: str) -> None:
    assert len(bad) == 18
    assert validation_error(bad) == "must be 17 digits followed by a digit or X"


@pytest.mark.parametrize(
    "bad",
    [
        # 2023-02-30. 1,1,0,1,0,5,2,0,2,3,0,2,3,0,0,0,1:
        # 7+9+0+5+0+20+4+0+12+9+0+18+30+0+0+0+2 = 116; 116 mod 11 = 6 -> "6": check char right, date not
        "110105202302300016",
        # 1900 was not a leap year: 1900-02-29 (check char computed so only the date is wrong)
        "11010519000229001" + weighted_check("11010519000229001"),
        "11010519901301001" + weighted_check("11010519901301001"),  # month 13
        "11010519900100001" + weighted_check("11010519900100001"),  # day 00
        "11010500000101001" + weighted_check("11010500000101001"),  # year 0000
    ],
)
def test_impossible_birth_date(bad: str) -> None:
    assert check_character(bad[:17]) == bad[17]
    assert validation_error(bad) == "birth date is not a real date"


def test_lower_case_x_is_invalid_with_its_own_description() -> None:
    assert validation_error("11010519491231002x") == "check character X must be upper-case"
    assert not is_valid("11010519491231002x")
    assert is_valid("11010519491231002X")


def test_non_string_is_reported_not_raised() -> None:
    assert validation_error(110101199003071233) == "must be a string"  # type: ignore[arg-type]
    assert validation_error(None) == "must be a string"  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_description_is_always_one_of_the_fixed_texts(text: str) -> None:
    # a fixed set of texts can never echo the input
    result = validation_error(text)
    assert result is None or result in DESCRIPTIONS


@given(st.text(alphabet="0123456789Xx", min_size=18, max_size=18))
def test_description_never_contains_the_input(text: str) -> None:
    result = validation_error(text)
    assert result is None or (text not in result and text[:6] not in result)


# --- mask ----------------------------------------------------------------------------------------


def test_mask_shape() -> None:
    assert mask("110101199003071234") == "1101**********1234"
    assert mask("11010519491231002X") == "1101**********002X"
    assert len(mask("11010519491231002X")) == 18


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("", ""),
        ("1", "*"),
        ("11010519491231002", "*" * 17),  # 17 chars: nothing shown
        ("11010519491231002X1", "*" * 19),
        ("张三", "**"),
    ],
)
def test_mask_of_other_lengths_reveals_only_the_length(raw: str, masked: str) -> None:
    assert mask(raw) == masked


def test_mask_never_raises() -> None:
    assert mask(None) == "****"  # type: ignore[arg-type]
    assert mask(110101199003071233) == "****"  # type: ignore[arg-type]


# --- scrub ---------------------------------------------------------------------------------------


def test_scrub_masks_embedded_numbers_and_leaves_the_rest() -> None:
    text = "申请人身份证号11010519491231002X，联系人(110101199003071233)已核实。"
    assert scrub(text) == "申请人身份证号1101**********002X，联系人(1101**********1233)已核实。"


def test_scrub_masks_invalid_and_lower_case_lookalikes() -> None:
    # the check character is not verified: anything ID-shaped goes
    assert scrub("id=110101199003071234;") == "id=1101**********1234;"
    assert scrub("id=11010519491231002x end") == "id=1101**********002x end"


def test_scrub_at_the_edges_of_the_text() -> None:
    assert scrub("11010519491231002X") == "1101**********002X"
    assert scrub("a110101199003071233b") == "a1101**********1233b"


def test_scrub_leaves_longer_and_shorter_digit_runs_alone() -> None:
    card = "6222021234567890123"  # 19 digits: a bank card, not an ID number
    assert scrub(f"card {card} ok") == f"card {card} ok"
    assert scrub("1101051949123100") == "1101051949123100"  # 16 digits
    assert scrub("11010519491231002") == "11010519491231002"  # 17 digits, no check character
    assert scrub("x" + "1" * 36 + "x") == "x" + "1" * 36 + "x"  # two numbers run together: one long run


def test_scrub_x_ends_the_run() -> None:
    # an X check character is the end of the run even if digits follow
    assert scrub("11010519491231002X5") == "1101**********002X5"


def test_scrub_masks_full_width_numbers() -> None:
    full = "".join(chr(ord(c) + 0xFEE0) for c in "11010519491231002X")  # １１０１...００２Ｘ
    assert scrub(f"号码：{full}。") == f"号码：{full[:4]}{'*' * 10}{full[14:]}。"


def test_scrub_without_numbers_is_identity() -> None:
    text = "没有号码 no numbers 12345 2024-01-01"
    assert scrub(text) == text
    assert scrub("") == ""


def test_scrub_several() -> None:
    a, b = "11010519491231002X", "440305198511150235"
    assert scrub(f"{a} {b} {a}") == "1101**********002X 4403**********0235 1101**********002X"


# --- make_id_number ------------------------------------------------------------------------------


def test_make_id_number_known() -> None:
    assert make_id_number("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert make_id_number("440305", date(1985, 11, 15), 23) == "440305198511150235"
    assert make_id_number("510104", date(1978, 6, 1), 18) == "510104197806010180"


@pytest.mark.parametrize(
    ("area", "sequence"),
    [
        ("11010", 1),
        ("1101055", 1),
        ("11010a", 1),
        ("\uff11\uff11\uff10\uff11\uff10\uff15", 1),
        ("110105", -1),
        ("110105", 1000),
    ],
)
def test_make_id_number_rejects_bad_arguments(area: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        make_id_number(area, date(1990, 1, 1), sequence)


def test_make_id_number_rejects_bool_sequence() -> None:
    with pytest.raises(ValueError):
        make_id_number("110105", date(1990, 1, 1), True)


# --- properties ----------------------------------------------------------------------------------

areas = st.text(alphabet=string.digits, min_size=6, max_size=6)
births = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
sequences = st.integers(min_value=0, max_value=999)
valid_numbers = st.builds(make_id_number, areas, births, sequences)


@given(areas, births, sequences)
def test_make_id_number_is_always_valid(area: str, birth: date, sequence: int) -> None:
    number = make_id_number(area, birth, sequence)
    assert validation_error(number) is None
    assert number[:6] == area
    assert number[6:14] == f"{birth.year:04d}{birth.month:02d}{birth.day:02d}"
    assert int(number[14:17]) == sequence
    assert number[17] == weighted_check(number[:17])


@given(valid_numbers, st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_changing_any_one_character_makes_it_invalid(number: str, position: int, new: str) -> None:
    # MOD 11-2 detects every single-character substitution: a change of d at position i changes the
    # weighted sum by d * w_i, and 11 is prime, so it is never 0 mod 11.
    if position < 17 and new == "X":
        new = "0"
    if new == number[position]:
        return
    changed = number[:position] + new + number[position + 1 :]
    assert not is_valid(changed)


@given(valid_numbers, st.integers(min_value=0, max_value=16))
def test_swapping_adjacent_digits_makes_it_invalid(number: str, position: int) -> None:
    # adjacent weights satisfy w_i = 2 w_(i+1) mod 11, so a swap changes the sum by (a - b) w_(i+1) != 0
    a, b = number[position], number[position + 1]
    if a == b or b == "X":
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not is_valid(swapped)


@given(valid_numbers)
def test_mask_never_contains_the_middle(number: str) -> None:
    masked = mask(number)
    assert masked == number[:4] + "*" * 10 + number[14:]
    assert number[4:14] not in masked
    assert number not in masked


@given(st.text(max_size=60))
def test_mask_never_shows_more_than_eight_characters(text: str) -> None:
    masked = mask(text)
    assert len(masked) == len(text)
    assert sum(c != "*" for c in masked) <= 8


no_digits = st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=30)


@given(no_digits, valid_numbers, no_digits)
def test_scrub_hides_the_middle_of_an_embedded_number(before: str, number: str, after: str) -> None:
    scrubbed = scrub(before + number + after)
    assert number not in scrubbed
    assert number[4:14] not in scrubbed


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=80))
def test_scrub_leaves_digit_free_text_alone(text: str) -> None:
    assert scrub(text) == text
