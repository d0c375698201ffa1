"""The FastAPI app: POST /predict with champion/challenger routing, GET /health, GET /models.

The request path avoids per-request pandas: msgspec parses the body straight from JSON bytes by
the pydantic models' rules (pydantic words the 422 when it fails, schemas.parse_bookings),
`FeatureBuilder.encode` (the same feature code `transform` wraps for batch scoring) builds a
float matrix and the booster's trees, compiled, score it on one thread; the answer is written
with orjson.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

import anyio
import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Query, Request, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from booking_platform.config import MODEL_NAME, Settings, load_settings
from booking_platform.core import warehouse
from booking_platform.core.cleaning import type_bookings
from booking_platform.core.explanations import top_reasons
from booking_platform.core.features import SCORED_ON
from booking_platform.core.net_demand import read_nights
from booking_platform.core.prediction_log import LoggedRequest, PredictionLog
from booking_platform.serving.explain_budget import ExplainBudget, retry_after
from booking_platform.serving.metrics import ServiceMetrics
from booking_platform.serving.model_store import ModelStore, ServingModels
from booking_platform.serving.routing import goes_to_challenger
from booking_platform.serving.schemas import (
    Booking,
    Prediction,
    cross_field_errors,
    parse_bookings,
    records,
    routing_keys,
    to_columns,
)
from booking_platform.serving.settings import ServeSettings, load_serve_settings

CHAMPION, CHALLENGER = "champion", "challenger"
AS_OF_DESCRIPTION = (
    "The date the prediction is for, as a scoring run's as-of date: the bookings are asked "
    "about as still open that day. Absent: each at its booking date."
)


def _json(content: Any, status_code: int = 200) -> Response:
    # orjson straight to bytes; ORJSONResponse is deprecated in this FastAPI, and a response
    # model would validate every row of a 1,000-booking answer once more
    return Response(orjson.dumps(content, default=str), status_code, media_type="application/json")


def _errors(status_code: int, errors: list[dict[str, Any]]) -> Response:
    """FastAPI's own error shape: detail = [{type, loc, msg}], loc starting at "body"."""
    for error in errors:
        error["loc"] = ["body", *error["loc"]]
    return _json({"detail": errors}, status_code)


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _rows(columns: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


@dataclass(frozen=True)
class Scored:
    probability: np.ndarray
    to_challenger: np.ndarray  # bool per booking: the challenger's answer was returned
    shadow_probability: np.ndarray | None  # the challenger's, when it only shadows


def score(
    models: ServingModels, columns: dict[str, np.ndarray], keys: list[str], serve: ServeSettings
) -> Scored:
    """Route each booking by its key's stable hash, score it with its arm; in shadow mode the
    champion answers everything and the challenger scores everything too."""
    champion, challenger = models.champion, models.challenger
    assert champion is not None
    if challenger is None or serve.shadow or serve.challenger_share == 0:
        to_challenger = np.zeros(len(keys), dtype=bool)
    else:
        share = serve.challenger_share
        to_challenger = np.fromiter((goes_to_challenger(k, share) for k in keys), bool, len(keys))
    if not to_challenger.any():
        probability = champion.score(columns)
    elif to_challenger.all():
        probability = challenger.score(columns)
    else:
        probability = np.empty(len(keys))
        probability[~to_challenger] = champion.score(_rows(columns, ~to_challenger))
        probability[to_challenger] = challenger.score(_rows(columns, to_challenger))
    shadow = challenger.score(columns) if challenger is not None and serve.shadow else None
    return Scored(probability, to_challenger, shadow)


def _request_body_schema(max_batch: int) -> dict[str, Any]:
    booking = Booking.model_json_schema()
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        booking,
                        {"type": "array", "items": booking, "minItems": 1, "maxItems": max_batch},
                    ]
                }
            }
        },
    }


def create_app(settings: Settings, serve: ServeSettings, model_name: str = MODEL_NAME) -> FastAPI:
    store = ModelStore(
        settings.mlflow_tracking_uri,
        settings.mlflow_artifact_root,
        settings.compiled_models_path,
        model_name,
        serve.poll_seconds,
    )
    prediction_log = PredictionLog(settings.online_predictions_path, serve.log_flush_seconds)
    explain_budget = ExplainBudget(
        serve.explained_per_second, max(serve.explained_per_second, serve.max_explained)
    )
    explaining = anyio.CapacityLimiter(1)  # one explanation at a time per worker, off the loop

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prediction_log.start()
        store.start()  # loads the models before this worker takes connections
        yield
        store.stop()
        prediction_log.stop()

    # /docs and /redoc with Swagger UI's and ReDoc's files served by the app, not a CDN: the
    # docs open where the service runs without internet access
    app = FastAPIOffline(
        title="booking_platform predictions",
        description="Cancellation probability of hotel bookings, from the registry's champion "
        "(and challenger, for an A/B test or in shadow).",
        lifespan=lifespan,
    )
    app.state.store, app.state.prediction_log = store, prediction_log
    metrics = ServiceMetrics(lambda: [route.path for route in app.routes])
    app.add_middleware(metrics.middleware)
    prediction_schema = Prediction.model_json_schema()

    @app.post(
        "/predict",
        openapi_extra={"requestBody": _request_body_schema(serve.max_batch)},
        responses={
            200: {
                "description": "One prediction per booking (a list for a list)",
                "content": {"application/json": {"schema": prediction_schema}},
            },
            408: {"description": "the body did not arrive in time"},
            413: {"description": "body or batch too large, or too many bookings to explain"},
            415: {"description": "the body is not declared application/json"},
            422: {"description": "invalid booking: detail names the field"},
            429: {"description": "the worker's explanation budget is spent: see Retry-After"},
            503: {"description": "no champion model loaded yet"},
        },
    )
    async def predict(
        request: Request,
        as_of: Annotated[date | None, Query(description=AS_OF_DESCRIPTION)] = None,
        explain: Annotated[
            bool, Query(description="add each answer's top three reasons (costs CPU: capped)")
        ] = False,
    ) -> Response:
        """Score one booking (an object) or several (a list) in the source schema."""
        started = time.perf_counter()
        if not _is_json(request):
            return _errors(415, [_unsupported(request.headers.get("content-type", "none"))])
        try:
            body = await _read_body(request, serve.max_body_bytes)
        except BodyTooLarge:
            return _errors(413, [_too_large(f"more than {serve.max_body_bytes} bytes")])
        except ClientDisconnect:  # gone, or cut off by the body deadline (slow_clients.py)
            return Response(status_code=408)
        many = body.lstrip()[:1] == b"["
        try:
            bookings = parse_bookings(body, many)
        except ValidationError as error:
            errors = error.errors(include_url=False, include_input=False)
            return _errors(422, errors[:50])  # a bad 1,000-booking list must not echo 30k errors
        if len(bookings) > serve.max_batch:
            return _errors(
                413, [_too_large(f"{len(bookings)} bookings, at most {serve.max_batch}")]
            )
        if not bookings:
            return _errors(422, [{"type": "too_short", "loc": (), "msg": "no bookings"}])
        if explain and len(bookings) > serve.max_explained:
            message = f"{len(bookings)} bookings to explain, at most {serve.max_explained}"
            return _errors(413, [_too_large(message)])
        columns = to_columns(bookings)
        if as_of is not None:
            columns[SCORED_ON] = np.full(len(bookings), np.datetime64(as_of, "D"))
        if errors := cross_field_errors(columns):
            if not many:  # located like pydantic's own errors: no list position for an object
                errors = [{**error, "loc": error["loc"][1:]} for error in errors]
            return _errors(422, errors[:50])
        models = store.current
        if models.champion is None:
            return _json({"detail": "no champion model loaded yet"}, 503)
        if explain and (wait := explain_budget.take(len(bookings))):
            response = _errors(429, [_over_budget(serve.explained_per_second, wait)])
            response.headers["retry-after"] = retry_after(wait)
            return response
        keys = routing_keys(bookings)
        scored = score(models, columns, keys, serve)
        answers = _answers(models, columns["booking_id"], scored)
        if explain:
            await anyio.to_thread.run_sync(
                _add_reasons, answers, bookings, columns, models, scored, limiter=explaining
            )
        content = orjson.dumps(answers if many else answers[0])
        _count_answers(metrics, models, scored)
        prediction_log.append(_logged_request(models, keys, columns["booking_id"], scored, started))
        return Response(content, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        """200 once a champion is loaded (ready for traffic), 503 before."""
        models = store.current
        if models.champion is None:
            reason = store.last_error or "no champion loaded yet"
            return _json({"status": "not ready", "reason": reason}, 503)
        return _json({"status": "ready", "champion_version": models.champion.version})

    @app.get(
        "/demand",
        responses={
            404: {"description": "no forecast, or an unknown hotel: detail says which"},
            422: {"description": "from after to"},
        },
    )
    def demand(
        hotel: Annotated[str, Query(description='e.g. "City Hotel"')],
        start: Annotated[date, Query(alias="from", description="first night, YYYY-MM-DD")],
        end: Annotated[date, Query(alias="to", description="last night, YYYY-MM-DD")],
        as_of: Annotated[
            date | None,
            Query(
                description="the forecast made on this date; default: the newest on or "
                "before `from`"
            ),
        ] = None,
    ) -> Response:
        """One hotel's nights from the net_demand table: rooms booked, expected cancellations
        and rooms occupied, 80 % and 95 % intervals, capacity, headroom, realised when known."""
        if start > end:
            return _json({"detail": f"from {start} is after to {end}"}, 422)
        if not settings.warehouse_url and not settings.warehouse_path.exists():
            return _json({"detail": "no warehouse yet"}, 404)
        with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
            try:
                forecast_as_of, nights = read_nights(connection, hotel, start, end, as_of)
            except LookupError as error:
                return _json({"detail": str(error)}, 404)
        nights["night"] = nights["night"].dt.strftime("%Y-%m-%d")
        return _json(
            {
                "hotel": hotel,
                "as_of": str(forecast_as_of),
                "scope": "bookings on the books on as_of; bookings made later are not counted",
                # pandas writes NaN (realised not known yet) as null and numpy numbers as JSON
                "nights": orjson.loads(nights.drop(columns="hotel").to_json(orient="records")),
            }
        )

    @app.get("/models")
    async def loaded_models() -> Response:
        """The versions behind each alias, as loaded, and how traffic is split."""
        models = store.current
        return _json(
            {
                CHAMPION: models.champion and models.champion.describe(),
                CHALLENGER: models.challenger and models.challenger.describe(),
                "challenger_share": serve.challenger_share,
                "shadow": serve.shadow,
                "poll_seconds": serve.poll_seconds,
                "last_poll": store.last_poll
                and datetime.fromtimestamp(store.last_poll, UTC).isoformat(),
                "last_error": store.last_error,
            }
        )

    @app.get("/metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of the whole service (all workers): requests by route and status,
        latency histogram, errors, and bookings answered per arm and model version."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app


def _count_answers(metrics: ServiceMetrics, models: ServingModels, scored: Scored) -> None:
    champion, challenger = models.champion, models.challenger
    to_challenger = int(scored.to_challenger.sum())
    metrics.count_answers(CHAMPION, champion.version, len(scored.to_challenger) - to_challenger)
    if challenger is not None:
        metrics.count_answers(CHALLENGER, challenger.version, to_challenger)
        if scored.shadow_probability is not None:
            count = len(scored.shadow_probability)
            metrics.count_answers(CHALLENGER, challenger.version, count, served=False)


def _too_large(message: str) -> dict[str, Any]:
    return {"type": "too_large", "loc": (), "msg": message}


def _unsupported(content_type: str) -> dict[str, Any]:
    message = f"the body must be sent as content-type application/json, not {content_type[:80]}"
    return {"type": "unsupported_media_type", "loc": (), "msg": message}


def _over_budget(per_second: float, wait: float) -> dict[str, Any]:
    message = (
        f"this worker explains at most {per_second:g} bookings a second; retry in {wait:.1f} s, "
        "or ask without explain=true"
    )
    return {"type": "too_many_explanations", "loc": (), "msg": message}


def _add_reasons(
    answers: list[dict],
    bookings: Sequence[Any],
    columns: dict[str, np.ndarray],
    models: ServingModels,
    scored: Scored,
) -> None:
    """Each answer's top three reasons, from the model that answered it (`?explain=true`).

    Opt-in: exact TreeSHAP costs about 2 ms a booking, as much as the whole fast path.
    """
    frame = type_bookings(pd.DataFrame(records(bookings)))
    if SCORED_ON in columns:
        frame[SCORED_ON] = columns[SCORED_ON]
    for to_challenger, loaded in ((False, models.champion), (True, models.challenger)):
        rows = np.flatnonzero(scored.to_challenger == to_challenger)
        if loaded is None or len(rows) == 0:
            continue
        for row, reasons in zip(rows, top_reasons(loaded.model, frame.iloc[rows]), strict=True):
            answers[row]["reasons"] = [reason.record() for reason in reasons]


def _answers(models: ServingModels, booking_ids: np.ndarray, scored: Scored) -> list[dict]:
    champion, challenger = models.champion, models.challenger
    assert champion is not None
    routed, rows = scored.to_challenger, len(scored.to_challenger)
    # each answer's arm as whole columns: per-booking lookups cost more than building the dicts
    threshold = np.full(rows, champion.model.threshold)
    versions, variants = [champion.version] * rows, [CHAMPION] * rows
    if challenger is not None:
        threshold[routed] = challenger.model.threshold
        for row in np.flatnonzero(routed).tolist():
            versions[row], variants[row] = challenger.version, CHALLENGER
    return [
        {
            "booking_id": booking_id,
            "cancel_probability": probability,
            "predicted_cancel": cancel,
            "model_version": version,
            "variant": variant,
        }
        for booking_id, probability, cancel, version, variant in zip(
            booking_ids.tolist(),
            scored.probability.tolist(),
            (scored.probability >= threshold).tolist(),
            versions,
            variants,
            strict=True,
        )
    ]


def _logged_request(
    models: ServingModels,
    keys: list[str],
    booking_ids: np.ndarray,
    scored: Scored,
    started: float,
) -> LoggedRequest:
    champion, challenger = models.champion, models.challenger
    challenger_version = challenger.version if challenger else ""
    ids, routed = booking_ids.tolist(), scored.to_challenger.tolist()
    predictions: dict[str, list] = {
        "booking_id": ids,
        "routing_key": keys,
        "variant": [CHALLENGER if to_ch else CHAMPION for to_ch in routed],
        "model_version": [challenger_version if to_ch else champion.version for to_ch in routed],
        "served": [1] * len(ids),
        "cancel_probability": scored.probability.tolist(),
    }
    if scored.shadow_probability is not None:
        shadow = {
            "booking_id": ids,
            "routing_key": keys,
            "variant": [CHALLENGER] * len(ids),
            "model_version": [challenger_version] * len(ids),
            "served": [0] * len(ids),
            "cancel_probability": scored.shadow_probability.tolist(),
        }
        predictions = {field: predictions[field] + shadow[field] for field in predictions}
    return LoggedRequest(
        logged_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        request_id=uuid.uuid4().hex,
        champion_version=champion.version,
        challenger_version=challenger_version,
        latency_ms=(time.perf_counter() - started) * 1000,
        predictions=predictions,
    )


def app_from_env() -> FastAPI:
    """What every uvicorn worker imports: settings from the environment (set by the CLI)."""
    return create_app(load_settings(), load_serve_settings())
