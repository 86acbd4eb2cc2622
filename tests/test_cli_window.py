"""Which stored papers `digest rank` and `digest preview` consider: by default what a new
reader's first digest would hold (the papers that ARRIVED in the last day before now,
plan.py's one notion of "new"); `--since DATE` widens it by arrival, `--all` takes every
paper, and an empty window says so in one line."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import pipeline, rank
from digest.cli import cli
from digest.config import Config
from digest.deliver.memory import MemoryBackend
from digest.send import send
from digest.store import Store

from .conftest import SEED_ARRIVAL, SEED_PAPERS
from .factories import PEFT, confirmed_subscriber, make_paper

#: Two papers that arrive two days after the seeds (an ingest on Oct 18).
LATE_ARRIVAL = datetime(2025, 10, 18, 6, tzinfo=UTC)
LATE = (
    make_paper(
        "LoRA adapters for streaming speech recognition",
        "We fine-tune a speech model with LoRA adapters, parameter-efficient fine-tuning.",
        seen=LATE_ARRIVAL,
    ),
    make_paper(
        "Parameter-efficient fine-tuning of vision transformers with adapters",
        "Adapters and LoRA for vision transformers.",
        seen=LATE_ARRIVAL,
    ),
)
#: The day of the late arrivals, after the readers' default send time (07:00 UTC).
ON_THE_18TH = LATE_ARRIVAL + timedelta(hours=2)
EMPTY_DAY = (
    "no papers arrived in the last day; the newest arrived 2025-10-16 06:00 UTC;"
    " use --since 2025-10-16 or --all\n"
)


def digest(project: Path, now: datetime, *args: str) -> tuple[int, str, str]:
    """`digest --config ... --now NOW ARGS...` through click: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), "--now", now.isoformat(), *args]
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ranked_titles(project: Path, now: datetime, *args: str) -> list[str]:
    code, out, err = digest(project, now, "rank", "-k", "LoRA, adapters", "--json", *args)
    assert code == 0, err
    return [json.loads(line)["title"] for line in out.splitlines()]


@pytest.fixture
def late_project(seeded_project: Path, seeded_config: Config) -> Path:
    """The seeded project (seeds arrived Oct 16 06:00) plus LATE, arrived Oct 18 06:00."""
    with Store(seeded_config.store_path) as store:
        assert store.add_papers(LATE, arrived_at=LATE_ARRIVAL).new == 2
    return seeded_project


def test_by_default_rank_takes_the_last_days_arrivals_only(late_project: Path) -> None:
    assert sorted(ranked_titles(late_project, ON_THE_18TH)) == sorted(p.title for p in LATE)
    # The seeds match too, but they arrived two days ago.
    assert len(ranked_titles(late_project, ON_THE_18TH, "--all")) > 2


def test_since_widens_the_window_by_arrival_and_all_takes_everything(late_project: Path) -> None:
    every = ranked_titles(late_project, ON_THE_18TH, "--all")
    assert ranked_titles(late_project, ON_THE_18TH, "--since", "2025-10-16") == every
    # Arrival, not the source's date: the seeds were first seen on many earlier days.
    assert ranked_titles(late_project, ON_THE_18TH, "--since", "2025-10-17") == [
        t for t in every if t in {p.title for p in LATE}
    ]


def test_the_first_days_window_holds_what_was_just_ingested(seeded_project: Path) -> None:
    just_after = SEED_ARRIVAL + timedelta(minutes=5)
    assert ranked_titles(seeded_project, just_after) == ranked_titles(
        seeded_project, just_after, "--all"
    )
    code, out, _ = digest(seeded_project, just_after, "preview", "-k", "LoRA", "-n", "1")
    assert code == 0 and f"1 paper picked from {SEED_PAPERS} new." in out


def test_a_day_is_the_one_period_before_now_exactly(late_project: Path) -> None:
    # Papers that arrived exactly one day before now are the previous day's (plan.py's rule).
    assert ranked_titles(late_project, LATE_ARRIVAL + timedelta(days=1)) == []
    assert len(ranked_titles(late_project, LATE_ARRIVAL + timedelta(hours=23, minutes=59))) == 2


def test_rank_holds_what_a_new_readers_first_digest_holds(
    late_project: Path, seeded_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    with Store(seeded_config.store_path) as store:
        reader = confirmed_subscriber(seeded_config, store, spec=PEFT, now=LATE_ARRIVAL)
        assert send(seeded_config, store, MemoryBackend(), ON_THE_18TH).sent == 1
        first_digest = store.sent_paper_ids(reader.id)
    code, out, err = digest(
        late_project,
        ON_THE_18TH,
        "rank",
        *[arg for kw in PEFT.keywords for arg in ("-k", f'"{kw.text}"')],
        "--json",
    )
    assert code == 0, err
    assert {json.loads(line)["id"] for line in out.splitlines()} == first_digest
    assert first_digest == {p.id for p in LATE}


def test_weekly_looks_back_a_week(seeded_project: Path) -> None:
    three_days_on = SEED_ARRIVAL + timedelta(days=3)
    code, out, err = digest(seeded_project, three_days_on, "rank", "-k", "LoRA")
    assert (code, out) == (0, "")
    assert err.startswith("no papers arrived in the last day;")
    weekly = ranked_titles(seeded_project, three_days_on, "--frequency", "weekly")
    assert weekly and weekly == ranked_titles(seeded_project, three_days_on, "--all")
    code, _, err = digest(
        seeded_project,
        SEED_ARRIVAL + timedelta(days=8),
        "rank",
        "-k",
        "LoRA",
        "--frequency",
        "weekly",
    )
    assert code == 0 and err.startswith("no papers arrived in the last week; the newest arrived")


@pytest.mark.parametrize("args", [["rank"], ["rank", "--json"], ["preview"]])
def test_an_empty_window_says_so_in_one_line(seeded_project: Path, args: list[str]) -> None:
    args = [*args, "-k", "LoRA"]
    a_month_on = SEED_ARRIVAL + timedelta(days=30)
    assert digest(seeded_project, a_month_on, *args) == (0, "", EMPTY_DAY)
    # --since by arrival: the seeds' sources printed dates up to Dec 26, but they arrived Oct 16.
    code, out, err = digest(seeded_project, a_month_on, *args, "--since", "2025-12-01")
    assert (code, out) == (0, "")
    assert err == EMPTY_DAY.replace("in the last day", "on or after 2025-12-01")
    # The hint works.
    code, out, _ = digest(seeded_project, a_month_on, *args, "--since", "2025-10-16")
    assert code == 0 and "LoRA" in out


def test_no_match_in_a_full_window_is_not_an_empty_window(seeded_project: Path) -> None:
    code, out, err = digest(
        seeded_project, SEED_ARRIVAL + timedelta(hours=1), "rank", "-k", "zymurgy"
    )
    assert (code, out, err) == (0, "", "0 papers for keywords\n")


def test_an_empty_store_is_not_an_empty_window(project: Path) -> None:
    assert digest(project, SEED_ARRIVAL, "rank", "-k", "LoRA") == (0, "", "0 papers for keywords\n")
    code, out, _ = digest(project, SEED_ARRIVAL, "preview", "-k", "LoRA")
    assert code == 0 and "no papers yet" in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--since", "2025-10-16", "--all"],
            "give one of --since DATE, --all, --frequency; not --since and --all",
        ),
        (
            ["--all", "--frequency", "weekly"],
            "give one of --since DATE, --all, --frequency; not --all and --frequency",
        ),
        (["--since", "last week"], "--since 'last week': not a date; use YYYY-MM-DD"),
    ],
)
@pytest.mark.parametrize("command", ["rank", "preview"])
def test_window_options_are_checked(
    seeded_project: Path, command: str, args: list[str], error: str
) -> None:
    code, out, err = digest(seeded_project, SEED_ARRIVAL, command, "-k", "LoRA", *args)
    assert (code, out, err) == (2, "", f"error: {error}\n")


def test_windows_read_only_their_rows(seeded_store: Store) -> None:
    """A window is the rows after the arrival (as the send reads them), not the store."""
    seeded_store.add_papers(LATE, arrived_at=LATE_ARRIVAL)
    window = pipeline.recent_window(ON_THE_18TH)
    assert window.after == ON_THE_18TH - timedelta(days=1)
    assert [p.id for p in pipeline.stored_papers(seeded_store, window)] == [p.id for p in LATE]
    since = pipeline.window_since(date(2025, 10, 18))
    assert [p.id for p in pipeline.stored_papers(seeded_store, since)] == [p.id for p in LATE]
    assert pipeline.stored_papers(seeded_store, pipeline.window_since(date(2025, 10, 19))) == []
    assert len(pipeline.stored_papers(seeded_store, pipeline.Window())) == SEED_PAPERS + 2
    assert len(pipeline.stored_papers(seeded_store)) == SEED_PAPERS + 2


def test_a_paper_arriving_at_midnight_is_on_that_day(store: Store) -> None:
    midnight = datetime(2025, 10, 18, tzinfo=UTC)
    store.add_papers(LATE[:1], arrived_at=midnight)
    assert store.newest_arrival() == midnight
    window = pipeline.window_since(date(2025, 10, 18))
    assert [p.id for p in pipeline.stored_papers(store, window)] == [LATE[0].id]


def test_rank_reads_the_terms_ingest_kept(seeded_config: Config, seeded_store: Store) -> None:
    window = pipeline.window_since(date(2025, 10, 16))
    papers = pipeline.stored_papers(seeded_store, window)
    kept = pipeline.kept_terms(seeded_config, seeded_store, papers)
    assert set(kept) == {p.id for p in papers}  # ingest analysed every seed once
    now = SEED_ARRIVAL + timedelta(hours=1)
    items = pipeline.rank_stored(seeded_config, seeded_store, PEFT, now, window)
    synonyms = seeded_config.synonyms or None
    (analysed_afresh,) = rank.rank(papers, [PEFT], now, seeded_config.ranking, synonyms)
    assert items and items == list(analysed_afresh)
