"""GET /demand on a real server process, answering from the net_demand table."""

from datetime import date

import pandas as pd

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.net_demand import NET_DEMAND_TABLE


def test_demand_answers_one_hotels_nights_from_the_table(serve, served_home: Settings) -> None:  # noqa: ANN001
    server = serve()
    with server.client() as client:
        response = client.get(
            "/demand", params={"hotel": "City Hotel", "from": "2017-05-01", "to": "2017-05-07"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["hotel"] == "City Hotel" and body["as_of"] == "2017-05-01"
        assert [n["night"] for n in body["nights"]] == [f"2017-05-0{day}" for day in range(1, 8)]
        with warehouse.connect(served_home.warehouse_path, read_only=True) as connection:
            table = warehouse.read_slice(connection, NET_DEMAND_TABLE, date(2017, 5, 1))
        table = table[table["hotel"] == "City Hotel"].sort_values("night").head(7)
        assert [n["expected_occupied"] for n in body["nights"]] == list(table["expected_occupied"])
        assert [n["headroom"] for n in body["nights"]] == list(table["headroom"])
        assert all(n["realised_occupied"] is None for n in body["nights"])  # not known yet
        assert (
            pd.Series([n["occupied_95_low"] for n in body["nights"]])
            .le(pd.Series([n["occupied_95_high"] for n in body["nights"]]))
            .all()
        )

        unknown = client.get(
            "/demand", params={"hotel": "Beach Hotel", "from": "2017-05-01", "to": "2017-05-07"}
        )
        assert unknown.status_code == 404 and "unknown hotel" in unknown.json()["detail"]
        backwards = client.get(
            "/demand", params={"hotel": "City Hotel", "from": "2017-05-07", "to": "2017-05-01"}
        )
        assert backwards.status_code == 422
        missing = client.get("/demand", params={"hotel": "City Hotel", "from": "2017-05-01"})
        assert missing.status_code == 422
