"""One list of platforms: the API's validation, the participant rules (which URL keys carry a
platform's ids), the simulation and the CLI agree."""

from __future__ import annotations

import pytest

from study.participation.rules import PLATFORM_IDS, external_ids
from study.simulated_participants import SimulationConfig
from study.validation import PLATFORMS


def test_every_accepted_platform_has_its_id_keys():
    assert set(PLATFORM_IDS) == set(PLATFORMS)


def test_the_simulation_refuses_a_platform_the_api_does_not_know():
    with pytest.raises(ValueError, match="platform: must be one of prolific, mturk, direct"):
        SimulationConfig(platform="qualtrics").check()


def test_mturk_ids_come_from_its_own_keys():
    ids = external_ids("mturk", {"workerId": "W1", "hitId": "H1", "assignmentId": "A1"})
    assert (ids.id, ids.study_id, ids.session_id) == ("W1", "H1", "A1")
