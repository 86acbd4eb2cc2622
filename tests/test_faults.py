"""The short form of the fault-injection suite (`tests/faults.py`; `make faults` runs the
long form, every kind 20 times): one seeded round of the kinds that fit the suite's
budget (about 8 CPU-seconds), each followed by a clean rerun and the invariants. The
scheduler kill, the full disk, the locked store and the other SMTP and SendGrid faults
run in the long form only."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests import fault_harness as h
from tests.fault_injections import INJECTIONS, Templates

from .conftest import SEED_ARRIVAL, SeededTemplate

#: The kinds run inside `make test`, one round each.
SHORT = (
    "kill-ingest",
    "kill-send",
    "kill-publish",
    "smtp-451",
    "smtp-550-sender",
    "sendgrid-429-inf",
    "sendgrid-401",
    "read-only-store",
)
SEED = 14


@pytest.fixture(scope="module")
def templates(
    seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Templates:
    # The session's seeded template was ingested at INGEST_AT as a clean ingest is.
    return Templates(tmp_path_factory.mktemp("fault-templates"), seeded_template.root)


@pytest.mark.parametrize("kind", SHORT)
def test_after_the_fault_and_a_clean_rerun_the_invariants_hold(
    templates: Templates, tmp_path: Path, kind: str
) -> None:
    tally = h.Tally()
    INJECTIONS[kind](tally, random.Random(f"{SEED}:{kind}"), templates, tmp_path / kind)
    assert sum(tally.checks.values()) >= 2
    if kind.startswith("kill-"):
        assert sum(tally.kills.values()) == 1, "the drawn kill point was never reached"
    else:
        assert sum(tally.faults.values()) == 1


def test_the_short_form_runs_kinds_of_the_long_form_on_the_same_ingest() -> None:
    assert set(SHORT) <= set(INJECTIONS)
    assert h.INGEST_AT == SEED_ARRIVAL  # what `templates` relies on
