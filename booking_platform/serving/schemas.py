"""Request and response models of POST /predict, built from the source schema.

Types are strict (a string where a number belongs is a 422, not a guess) and every number's
bounds are core.bounds.NUMBER_BOUNDS, the table cleaning quarantines on, so the API and the batch
path reject the same bookings.

The same rules are declared twice, from the same tables: as pydantic models (the OpenAPI schema
and every 422's wording) and as a msgspec struct that decodes a body in under half of pydantic's
time. A request is decoded by msgspec; only a body it rejects goes through pydantic, which names
what is wrong. msgspec must never accept what pydantic rejects: test_schemas checks both on
every kind of malformed booking.
Closed vocabularies (hotel, meal, segment, ...) must be one of the data dictionary's levels;
open ones (country, agent, company, room types) are only checked for form, because a new
agent or country is a real booking: the model scores a level it never saw as missing, exactly as
batch scoring does. Checking against the champion's learnt levels instead would change the
API's contract at every retraining and differ between champion and challenger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from booking_platform.core.bounds import NUMBER_BOUNDS
from booking_platform.core.cleaning import NA_FILL
from booking_platform.core.features import ALLOWED_SOURCE_COLUMNS, POST_BOOKING
from booking_platform.core.source import CATEGORY_LEVELS, FEATURE_SOURCE_COLUMNS, HOTEL_NAME

SCHEMA_DTYPES = {"str": object, "int": "int64", "float": "float64"}
MONTHS = CATEGORY_LEVELS["arrival_date_month"]
MONTH_NUMBER = {name: i for i, name in enumerate(MONTHS, 1)}
TEXT_PATTERNS = {  # open vocabularies: the form the export uses
    "hotel": rf"^{HOTEL_NAME}$",  # as cleaning checks it
    "country": rf"^([A-Z]{{2,3}}|{NA_FILL['country']})$",  # as cleaning fills NA too
    "reserved_room_type": r"^[A-Z]$",
    "assigned_room_type": r"^[A-Z]$",
}
# msgspec matches with Python's re, whose `$` also matches before a final newline ("PRT\n");
# pydantic's Rust regex does not, so the fast decoder ends its patterns with `\Z` instead
FAST_TEXT_PATTERNS = {column: pattern[:-1] + r"\Z" for column, pattern in TEXT_PATTERNS.items()}
# columns a booking may lack: NA in the export means "none" (cleaning fills them the same way),
# or they are known only after booking and never feed the model
OPTIONAL = {*NA_FILL, *POST_BOOKING}


def _rule(column: str, kind: str) -> tuple[Any, dict[str, Any]]:
    """A column's type and constraints, as keywords both pydantic's Field and msgspec's Meta
    take."""
    if column in CATEGORY_LEVELS:
        return Literal[CATEGORY_LEVELS[column]], {}  # type: ignore[valid-type]
    if kind == "str":
        return str, {"pattern": TEXT_PATTERNS[column]}
    bound = NUMBER_BOUNDS[column]  # the bounds cleaning quarantines on
    return int if kind == "int" else float, {"ge": bound.ge, "le": bound.le}


def _field(column: str, kind: str) -> tuple[Any, Any]:
    annotation, constraints = _rule(column, kind)
    if column in OPTIONAL:
        return annotation | None, Field(None, **constraints)
    return annotation, Field(..., **constraints)


def _fast_field(column: str, kind: str) -> tuple[Any, ...]:
    annotation, constraints = _rule(column, kind)
    if "pattern" in constraints:
        constraints = {"pattern": FAST_TEXT_PATTERNS[column]}
    if constraints:
        annotation = Annotated[annotation, msgspec.Meta(**constraints)]
    if column in OPTIONAL:
        return column, annotation | None, None
    return column, annotation


Booking = create_model(
    "Booking",
    __config__=ConfigDict(strict=True, allow_inf_nan=False, extra="forbid"),
    __doc__="One booking in the source schema (the PMS export's columns), plus its id.",
    booking_id=(
        int,
        Field(
            ...,
            ge=NUMBER_BOUNDS["booking_id"].ge,
            le=NUMBER_BOUNDS["booking_id"].le,
            description="the PMS booking id",
        ),
    ),
    customer_id=(
        str | None,
        Field(None, min_length=1, max_length=128, description="routing key when given"),
    ),
    **{column: _field(column, kind) for column, kind in FEATURE_SOURCE_COLUMNS.items()},
)
BookingList = TypeAdapter(list[Booking])  # type: ignore[valid-type]
BOOKING_FIELDS = tuple(Booking.model_fields)
# Booking's rules again, for msgspec (module docstring). gc=False: a booking holds no container,
# so the collector need not track 1,000 more objects per request
FastBooking = msgspec.defstruct(
    "FastBooking",
    [
        (
            "booking_id",
            Annotated[
                int,
                msgspec.Meta(ge=NUMBER_BOUNDS["booking_id"].ge, le=NUMBER_BOUNDS["booking_id"].le),
            ],
        ),
        ("customer_id", Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None, None),
        *(_fast_field(column, kind) for column, kind in FEATURE_SOURCE_COLUMNS.items()),
    ],
    kw_only=True,
    forbid_unknown_fields=True,
    gc=False,
)
_decode_one = msgspec.json.Decoder(FastBooking).decode  # type: ignore[valid-type]
_decode_many = msgspec.json.Decoder(list[FastBooking]).decode  # type: ignore[valid-type]


def parse_bookings(body: bytes, many: bool) -> list[Any]:
    """The FastBookings of a JSON body (a list when `many`, else one object), valid by Booking's
    rules. Raises pydantic's ValidationError, naming every wrong field, for an invalid body."""
    try:
        return _decode_many(body) if many else [_decode_one(body)]
    except (msgspec.MsgspecError, UnicodeDecodeError):
        # only pydantic words the 422 (invalid UTF-8 inside a string escapes msgspec's own
        # errors); and where msgspec were stricter, pydantic's verdict holds
        valid = BookingList.validate_json(body) if many else [Booking.model_validate_json(body)]
        return [FastBooking(**booking.__dict__) for booking in valid]


class Prediction(BaseModel):
    """One booking's answer (documentation of the response; the service writes it with orjson)."""

    booking_id: int
    cancel_probability: float
    predicted_cancel: bool
    model_version: str
    variant: Literal["champion", "challenger"]


def routing_keys(bookings: Sequence[Any]) -> list[str]:
    """The customer when given (one customer, one arm), else the booking."""
    return [b.customer_id or str(b.booking_id) for b in bookings]


def records(bookings: Sequence[Any]) -> list[dict[str, Any]]:
    """FastBookings as dicts of Booking's fields."""
    return [msgspec.structs.asdict(booking) for booking in bookings]


_POSITION = {name: i for i, name in enumerate(FastBooking.__struct_fields__)}


def to_columns(bookings: Sequence[Any]) -> dict[str, np.ndarray]:
    """FastBookings (at least one) as the cleaned schema's columns, what FeatureBuilder.encode
    reads."""
    # rows to one tuple per field in C: a Python loop per column and row costs 1-2 ms per 1,000
    fields = list(zip(*map(msgspec.structs.astuple, bookings), strict=True))
    values = {name: fields[i] for name, i in _POSITION.items()}
    columns: dict[str, np.ndarray] = {}
    for column in ALLOWED_SOURCE_COLUMNS:
        column_values = values[column]
        if column in NA_FILL and None in column_values:
            fill = NA_FILL[column]
            column_values = tuple(fill if v is None else v for v in column_values)
        columns[column] = np.array(
            column_values, dtype=SCHEMA_DTYPES[FEATURE_SOURCE_COLUMNS[column]]
        )
    year = np.array(values["arrival_date_year"], dtype="int64")
    months = values["arrival_date_month"]
    month = np.fromiter(map(MONTH_NUMBER.__getitem__, months), "int64", len(months))
    day = columns["arrival_date_day_of_month"].astype("int64")
    # 30 February rolls over into March here; cross_field_errors reports such rows
    first_of_month = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    columns["arrival_date"] = first_of_month.astype("datetime64[D]") + (day - 1).astype(
        "timedelta64[D]"
    )
    columns["arrival_date_year"], columns["arrival_month_number"] = year, month
    columns["booking_id"] = np.array(values["booking_id"], dtype="int64")
    return columns


def cross_field_errors(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The rules that span fields, checked on whole columns (a Python validator per booking
    costs more than all the other validation): a real calendar date and at least one guest.
    Errors are in pydantic's form, located at the field that makes the row invalid."""
    rolled_over = columns["arrival_date"].astype("datetime64[M]").astype("int64") % 12 + 1
    impossible = rolled_over != columns["arrival_month_number"]
    guests = columns["adults"] + columns["children"] + columns["babies"]
    errors = [
        {
            "type": "impossible_date",
            "loc": (int(row), "arrival_date_day_of_month"),
            "msg": f"{MONTHS[columns['arrival_month_number'][row] - 1]} "
            f"{columns['arrival_date_year'][row]} has no day "
            f"{columns['arrival_date_day_of_month'][row]}",
        }
        for row in np.flatnonzero(impossible)
    ]
    errors += [
        {
            "type": "zero_guests",
            "loc": (int(row), "babies"),
            "msg": "adults + children + babies must be at least 1 (cleaning quarantines it)",
        }
        for row in np.flatnonzero(guests <= 0)
    ]
    return errors
