"""1,000 malformed requests against a real server: every one gets a 4xx, none a 5xx, and the
server is still healthy after."""

import json
import random

from booking_platform.config import Settings
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS
from booking_platform.serving.schemas import POST_BOOKING
from booking_platform_tests.serving.test_api import BOOKING

NUMERIC = {c for c, kind in FEATURE_SOURCE_COLUMNS.items() if kind != "str"} | {"booking_id"}
OPTIONAL = {"children", "agent", "company", "country", *POST_BOOKING}
# each is wrong for any field of its kind: strict types, every number has bounds
WRONG_FOR_NUMBERS = ["x", "", "NaN", "1e3", [], [1, 2], {}, True, -(10**30), 10**30, "😀"]
WRONG_FOR_TEXT = [1, 3.7, -(10**30), 10**30, [], {}, True, False]


def _wrong_value(rng: random.Random, field: str) -> object:
    choices = WRONG_FOR_NUMBERS if field in NUMERIC else WRONG_FOR_TEXT
    return rng.choice(choices + ([None] if field not in OPTIONAL else []))


def _json(value: object) -> bytes:
    return json.dumps(value).encode()  # the standard library: big integers too


def _malformed(rng: random.Random, limit: int) -> bytes:
    kind = rng.randrange(9)
    booking = dict(BOOKING, booking_id=rng.randrange(10**6))
    field = rng.choice(sorted(BOOKING))
    if kind == 0:  # a wrong value in one field
        booking[field] = _wrong_value(rng, field)
    elif kind == 1:  # a missing required field
        booking.pop(rng.choice(sorted(set(BOOKING) - OPTIONAL)))
    elif kind == 2:  # broken JSON: cut anywhere
        text = _json(booking)
        return text[: rng.randrange(1, len(text) - 1)]
    elif kind == 3:  # not JSON at all
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    elif kind == 4:  # a list with one bad booking somewhere
        bookings = [dict(booking) for _ in range(rng.randrange(2, 20))]
        bookings[rng.randrange(len(bookings))][field] = _wrong_value(rng, field)
        return _json(bookings)
    elif kind == 5:  # a body over the byte limit
        return b'{"booking_id": 1, "pad": "' + b"y" * (limit + 10) + b'"}'
    elif kind == 6:  # a JSON value that is not a booking
        return rng.choice([b"[]", b"null", b"42", b'"text"', b"[[]]", b"[1, 2]", b"{}"])
    elif kind == 7:  # deep nesting
        depth = rng.randrange(100, 5000)
        return b"[" * depth + b"]" * depth
    elif rng.random() < 0.5:  # an unknown field
        booking["unknown_" + field] = 1
    else:  # a date that does not exist
        booking |= {"arrival_date_month": "February", "arrival_date_day_of_month": 30}
    return _json(booking)


def test_a_thousand_malformed_requests_all_get_4xx(served_home: Settings, serve) -> None:
    limit = 100_000
    server = serve("--max-batch", "20", env={"BOOKING_SERVE_MAX_BODY_BYTES": str(limit)})
    rng = random.Random(20261123)
    statuses = []
    with server.client() as client:
        for _ in range(1000):
            content_type = rng.choice(["application/json"] * 4 + ["text/plain"])
            response = client.post(
                "/predict",
                content=_malformed(rng, limit),
                headers={"content-type": content_type},
            )
            statuses.append(response.status_code)
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json=BOOKING).status_code == 200
    assert len(statuses) == 1000
    assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))
    assert {413, 422} <= set(statuses)
    assert server.process.poll() is None
