"""GET /demand on a real server process, answering from the net_demand table of a real DuckDB
file (written here by the same functions the asset uses; no model needed to read the table)."""

from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.net_demand import (
    estimate_capacity,
    forecast_net_demand,
    on_the_books,
    realised_occupancy,
)
from booking_platform.core.tables import NET_DEMAND, NET_DEMAND_REALISED
from booking_platform_tests.serving.conftest import Server, start_server, stop_server
from booking_platform_tests.synthetic import make_bookings, write_csv

MAY = date(2017, 5, 1)


@pytest.fixture(scope="module")
def demand_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("demand_api")
    frame = make_bookings(3000)
    source = write_csv(frame, root / "bookings.csv")
    settings = Settings(home=root / "home", source=str(source), as_of=MAY)
    cleaned = clean_bookings(frame).cleaned
    books = on_the_books(cleaned, MAY)
    books["cancel_probability"] = books["in_house"].map({True: 0.0, False: 0.3})
    nights = forecast_net_demand(books, MAY, estimate_capacity(cleaned, MAY), horizon_days=30)
    realised = realised_occupancy(cleaned, MAY, pd.Timestamp("2017-05-04"))
    with warehouse.connect(settings.warehouse_path) as connection:
        warehouse.replace_slices(
            connection,
            MAY,
            {
                NET_DEMAND.name: nights.assign(model_version="1"),
                NET_DEMAND_REALISED.name: realised,
            },
        )
    server = start_server(settings)
    yield server
    stop_server(server)


def test_demand_answers_one_hotels_nights_from_the_table(demand_server: Server) -> None:
    with demand_server.client() as client:
        response = client.get(
            "/demand", params={"hotel": "City Hotel", "from": "2017-05-01", "to": "2017-05-07"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["hotel"] == "City Hotel" and body["as_of"] == "2017-05-01"
    assert [n["night"] for n in body["nights"]] == [f"2017-05-0{day}" for day in range(1, 8)]
    with warehouse.connect(demand_server.settings.warehouse_path, read_only=True) as connection:
        table = warehouse.read_slice(connection, NET_DEMAND.name, MAY)
        realised = warehouse.read_slice(connection, NET_DEMAND_REALISED.name, MAY)
    table = table[table["hotel"] == "City Hotel"].sort_values("night").head(7)
    assert [n["expected_occupied"] for n in body["nights"]] == pytest.approx(
        list(table["expected_occupied"])
    )
    assert [n["headroom"] for n in body["nights"]] == list(table["headroom"])
    city = realised[realised["hotel"] == "City Hotel"].sort_values("night")
    # the realised rooms where the later export knew them (three nights), null after
    assert [n["realised_occupied"] for n in body["nights"]] == [
        *city["realised_occupied"].tolist(),
        *[None] * 4,
    ]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"hotel": "Beach Hotel", "from": "2017-05-01", "to": "2017-05-07"}, 404, "unknown hotel"),
        ({"hotel": "City Hotel", "from": "2017-05-07", "to": "2017-05-01"}, 422, "is after"),
        ({"hotel": "City Hotel", "from": "2016-05-01", "to": "2016-05-07"}, 404, "no net demand"),
        ({"hotel": "City Hotel", "from": "2017-05-01"}, 422, ""),
    ],
)
def test_demand_refusals_say_why(
    demand_server: Server, params: dict, status: int, message: str
) -> None:
    with demand_server.client() as client:
        response = client.get("/demand", params=params)
    assert response.status_code == status
    assert message in str(response.json()["detail"])
