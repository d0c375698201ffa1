"""Which version was champion on a date, and which may take the alias (pure rules)."""

from datetime import date

from booking_platform.core.champions import (
    TrainedVersion,
    champion_as_of,
    trained_on_newer_data,
)

MARCH = TrainedVersion("1", date(2017, 3, 1))
MAY = TrainedVersion("2", date(2017, 5, 1))
JULY = TrainedVersion("3", date(2017, 7, 1))
# registered by a backfill of an earlier date after July was champion: never took the alias
APRIL = TrainedVersion("4", date(2017, 4, 1))
TIMELINE = [MARCH, MAY, JULY, APRIL]


def test_each_date_gets_the_newest_model_trained_as_of_a_date_not_after_it() -> None:
    expected = {
        date(2017, 2, 28): None,  # every model saw later arrivals
        date(2017, 3, 1): MARCH,
        date(2017, 3, 31): MARCH,
        date(2017, 4, 1): APRIL,
        date(2017, 4, 30): APRIL,
        date(2017, 5, 1): MAY,
        date(2017, 6, 30): MAY,
        date(2017, 7, 1): JULY,
        date(2018, 1, 1): JULY,
    }
    got = {day: champion_as_of(TIMELINE, day, alias_holder=JULY) for day in expected}
    assert got == expected


def test_a_rollback_by_hand_is_followed_after_the_alias_holders_date() -> None:
    # a person moved `champion` back from July to May: July is out of the timeline
    assert champion_as_of(TIMELINE, date(2017, 8, 1), alias_holder=MAY) == MAY
    assert champion_as_of(TIMELINE, date(2017, 7, 1), alias_holder=MAY) == MAY
    assert champion_as_of(TIMELINE, date(2017, 4, 15), alias_holder=MAY) == APRIL


def test_the_later_registration_wins_a_tie_and_no_alias_means_the_timeline_alone() -> None:
    rerun = TrainedVersion("10", date(2017, 5, 1))  # numbers compare as numbers, not text
    assert champion_as_of([MAY, rerun, MARCH], date(2017, 6, 1), alias_holder=None) == rerun
    assert champion_as_of([], date(2017, 6, 1), alias_holder=None) is None


def test_only_newer_training_data_may_take_the_alias() -> None:
    assert trained_on_newer_data(date(2017, 5, 1), None)
    assert trained_on_newer_data(date(2017, 5, 2), date(2017, 5, 1))
    assert not trained_on_newer_data(date(2017, 5, 1), date(2017, 5, 1))
    assert not trained_on_newer_data(date(2017, 3, 1), date(2017, 5, 1))
