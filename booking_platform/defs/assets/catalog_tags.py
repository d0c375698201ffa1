"""Where an asset sits in Dagit: one group, its stage as a tag, and who owns it.

Dagit 1.13 draws groups only when there are several (layout `groupRendering: "if-varied"`) and
draws each collapsed until a person expands it: six groups opened as six boxes. One group opens
on the assets and their lineage; the stage, once the group's name, is now a tag (filter the
graph with `tag:stage=modeling`, or the catalogue by tag).
"""

GROUP = "booking_platform"
STAGE_TAG = "stage"
# who answers for the assets: the data platform team runs them, the revenue team reads them
OWNERS = ["team:data-platform"]


def stage(name: str) -> dict[str, object]:
    """The group, owners and stage tag of an asset: `@dg.asset(**stage("modeling"), ...)`."""
    return {"group_name": GROUP, "owners": list(OWNERS), "tags": {STAGE_TAG: name}}
