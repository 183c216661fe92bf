"""The pages' PBX picker: offered only when several PBXs are configured, kept in the period's links, and
a PBX the settings do not name refused as the API refuses it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from api.errors import UnknownPbx
from api.web.period_picker import picked_period
from calltracking.config import load_settings

ONE = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}]})
TWO = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}, {"name": "branch"}]})
OCTOBER = "from=2026-10-01&to=2026-10-31"


def test_one_pbx_offers_no_choice() -> None:
    picked = picked_period(make_mocked_request("GET", f"/ui/?{OCTOBER}"), ONE)
    assert (picked.pbx, picked.pbxs) == (None, ())


def test_several_pbxs_are_offered_and_the_picked_one_kept_in_links() -> None:
    picked = picked_period(make_mocked_request("GET", f"/ui/?{OCTOBER}&pbx=branch"), TWO)
    assert (picked.pbx, picked.pbxs) == ("branch", ("office", "branch"))
    assert picked.query() == f"{OCTOBER}&pbx=branch"


def test_all_pbxs_is_an_empty_choice() -> None:
    picked = picked_period(make_mocked_request("GET", f"/ui/?{OCTOBER}&pbx="), TWO)
    assert (picked.pbx, picked.query()) == (None, OCTOBER)


def test_a_pbx_the_settings_do_not_name_is_refused() -> None:
    with pytest.raises(UnknownPbx, match="warehouse"):
        picked_period(make_mocked_request("GET", f"/ui/?{OCTOBER}&pbx=warehouse"), TWO)
