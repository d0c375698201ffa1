"""The request decoder (msgspec) against the pydantic models it stands in for: it never accepts
a body pydantic rejects, reads every accepted body to the same values, and every rejected body's
422 is pydantic's own."""

import json
import random

import msgspec
import pytest
from pydantic import ValidationError

from booking_platform.serving.schemas import (
    BOOKING_FIELDS,
    Booking,
    BookingList,
    FastBooking,
    parse_bookings,
    records,
    to_columns,
)
from booking_platform_tests.serving.test_api import BOOKING
from booking_platform_tests.serving.test_malformed import _malformed

# the edges where two JSON parsers and two regex engines could disagree
EDGES = [
    {"country": "PRT\n"},  # Python's `$` matches before a final newline, Rust's does not
    {"reserved_room_type": "A\n"},
    {"country": "\u0050RT"},
    {"country": "prt"},
    {"country": "Unknown"},
    {"country": "PRTX"},
    {"adults": True},
    {"adults": 2.0},
    {"adr": 95},
    {"adr": 1e400},
    {"adr": -1e400},
    {"agent": -0.0},
    {"agent": 2**53},
    {"agent": 2**53 + 1},
    {"lead_time": 2**63},
    {"booking_id": 2**63 - 1},
    {"booking_id": 2**63},
    {"booking_id": -1},
    {"customer_id": ""},
    {"customer_id": "c" * 128},
    {"customer_id": "c" * 129},
    {"customer_id": "é" * 128},
    {"customer_id": None},
    {"children": None, "agent": None, "company": None, "country": None},
    {"hotel": None},
    {"assigned_room_type": "B", "booking_changes": 3, "days_in_waiting_list": 0},
    {"arrival_date_month": "june"},
    {"meal": "BB "},
]
RAW_EDGES = [
    b'{"booking_id": 1, "booking_id": "x"}',
    b"NaN",
    b"Infinity",
    b"\xef\xbb\xbf{}",
    b'"\\ud800"',
    b"[null]",
    b"[{}]",
]


def _verdict(body: bytes, many: bool) -> tuple[str, object]:
    try:
        valid = BookingList.validate_json(body) if many else [Booking.model_validate_json(body)]
    except ValidationError as error:
        return "rejected", error.errors(include_url=False, include_input=False)
    return "accepted", _typed([booking.model_dump() for booking in valid])


def _typed(rows: list[dict]) -> list[list[tuple]]:
    """Values with their types: 95 and 95.0 are equal, but not the same feature text."""
    return [[(name, type(value), value) for name, value in row.items()] for row in rows]


def _check(body: bytes) -> str:
    many = body.lstrip()[:1] == b"["
    verdict, expected = _verdict(body, many)
    if verdict == "accepted":
        assert _typed(records(parse_bookings(body, many))) == expected
    else:
        with pytest.raises(ValidationError) as raised:
            parse_bookings(body, many)
        assert raised.value.errors(include_url=False, include_input=False) == expected
    return verdict


def _body(change: dict) -> bytes:
    return json.dumps({**BOOKING, **change}).encode()


@pytest.mark.parametrize("change", EDGES, ids=[str(c)[:40] for c in EDGES])
def test_edges_decode_as_pydantic_validates(change: dict) -> None:
    _check(_body(change))
    _check(json.dumps([BOOKING, {**BOOKING, **change}]).encode())


@pytest.mark.parametrize("body", RAW_EDGES)
def test_raw_edges_decode_as_pydantic_validates(body: bytes) -> None:
    _check(body)


def test_malformed_bodies_decode_as_pydantic_validates() -> None:
    rng = random.Random(7)
    verdicts = [_check(_malformed(rng, 10_000)) for _ in range(3000)]
    assert verdicts.count("rejected") > 2500  # nearly all are malformed by construction


def test_the_fast_decoder_declares_every_booking_field() -> None:
    assert tuple(field.name for field in msgspec.structs.fields(FastBooking)) == BOOKING_FIELDS


def test_columns_are_the_same_from_either_decoder() -> None:
    """What parse_bookings returns when only pydantic accepts a body gives the same columns."""
    rows = [{**BOOKING, "booking_id": i, "agent": None if i % 3 else 9} for i in range(20)]
    body = json.dumps(rows).encode()
    fast = to_columns(parse_bookings(body, True))
    slow = to_columns(
        [FastBooking(**booking.__dict__) for booking in BookingList.validate_json(body)]
    )
    assert fast.keys() == slow.keys()
    for name, values in fast.items():
        assert values.dtype == slow[name].dtype and (values == slow[name]).all(), name
