"""1,000 malformed requests against a real server: every one gets a 4xx, none a 5xx, and the
server is still healthy after."""

import random

import orjson

from booking_platform.config import Settings
from booking_platform_tests.serving.test_api import BOOKING

BAD_VALUES = [
    None,
    "",
    "NaN",
    "x" * 1000,
    -1,
    -(10**30),
    10**30,
    1e308,
    3.7,
    True,
    [],
    [1, 2],
    {},
    {"a": 1},
    "2017-06-05",
    "\u0000",
    "😀",
]


def _malformed(rng: random.Random, limit: int) -> bytes:
    kind = rng.randrange(9)
    booking = dict(BOOKING, booking_id=rng.randrange(10**6))
    field = rng.choice(sorted(BOOKING))
    if kind == 0:  # a wrong value in one field
        booking[field] = rng.choice(BAD_VALUES)
    elif kind == 1:  # a missing required field
        booking.pop(
            rng.choice([f for f in BOOKING if f not in ("children", "agent", "company", "country")])
        )
    elif kind == 2:  # broken JSON: cut anywhere
        text = orjson.dumps(booking)
        return text[: rng.randrange(1, len(text) - 1)]
    elif kind == 3:  # not JSON at all
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    elif kind == 4:  # a list with one bad booking somewhere
        bookings = [dict(booking) for _ in range(rng.randrange(2, 20))]
        bookings[rng.randrange(len(bookings))][field] = rng.choice(BAD_VALUES[:10])
        return orjson.dumps(bookings)
    elif kind == 5:  # a body over the byte limit
        return b'{"booking_id": 1, "pad": "' + b"y" * (limit + 10) + b'"}'
    elif kind == 6:  # a JSON value that is not a booking
        return rng.choice([b"[]", b"null", b"42", b'"text"', b"[[]]", b"[1, 2]", b"{}"])
    elif kind == 7:  # deep nesting
        depth = rng.randrange(100, 5000)
        return b"[" * depth + b"]" * depth
    else:  # an unknown field or an impossible date
        if rng.random() < 0.5:
            booking["unknown_" + field] = 1
        else:
            booking |= {"arrival_date_month": "February", "arrival_date_day_of_month": 30}
    return orjson.dumps(booking, option=orjson.OPT_SERIALIZE_NUMPY)


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
