"""The CLI, through click's CliRunner and through the installed `digest` script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

from .conftest import FIXTURES, SEED_ARRIVAL

NOW = "2025-12-31T08:00:00+00:00"
#: Two hours after the seeded store's papers arrived: they are the last day's arrivals.
AFTER_SEEDS = (SEED_ARRIVAL + timedelta(hours=2)).isoformat()


def invoke(project: Path, *args: str, now: str = NOW) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(project / "config.toml"), "--now", now, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_ingest_prints_counts_and_reingest_adds_nothing(project: Path) -> None:
    code, out, err = invoke(project, "ingest")
    assert (code, out, err) == (0, "331 new, 33 updated, 0 skipped\n", "")
    code, out, _ = invoke(project, "ingest")
    assert (code, out) == (0, "0 new, 0 updated, 364 skipped\n")
    assert (project / "var" / "digest.sqlite3").exists()


def test_papers_json_has_exactly_the_documented_keys(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, out, err = invoke(project, "papers", "--json")
    assert err == ""  # the count goes to stderr only for humans
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 331
    assert all(
        list(r)
        == [
            "id",
            "title",
            "abstract",
            "published",
            "upvotes",
            "authors_count",
            "organization",
            "sources",
            "first_seen",
            "arxiv_id",
            "url",
            "authors",
            "summary",
            "keywords",
            "pdf_url",
            "code_url",
            "code_stars",
            "project_url",
            "thumbnail_url",
            "comments",
            "comment",
            "version",
            "doi",
        ]
        for r in rows
    )
    deepmind = next(r for r in rows if r["organization"] == "Deepmind")
    assert (deepmind["published"], deepmind["upvotes"], deepmind["sources"]) == (
        "2025-10-06",
        8,
        ["seeds"],
    )
    assert deepmind["first_seen"] == "2025-12-26T00:00:00+00:00"
    assert isinstance(rows[0]["upvotes"], int)


def test_papers_since(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    _, out, err = invoke(project, "papers", "--since", "2025-12-01", "--json")
    # The Dec 26 capture holds 46 papers; 4 of them were first seen in earlier captures.
    assert len(out.splitlines()) == 42
    code, _, err = invoke(project, "papers", "--since", "yesterday")
    assert code == 2 and err == "error: --since 'yesterday': not a date; use YYYY-MM-DD\n"


def test_db_option_overrides_the_store(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.sqlite3"
    runner = CliRunner()
    runner.invoke(cli, ["--config", str(project / "config.toml"), "--db", str(other), "ingest"])
    assert other.exists() and not (project / "var" / "digest.sqlite3").exists()


def test_preview_markdown_lists_matching_papers(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, out, _ = invoke(
        project, "preview", "--keywords", "speech, TTS", "--limit", "3", now=AFTER_SEEDS
    )
    assert code == 0
    assert out.startswith("# papers-digest — 2025-10-16\n")
    assert "\\." not in out and "papers-digest" in out
    assert out.count("\n1. ") == 1 and "\n3. " in out and "\n4. " not in out
    assert "Why: matches" in out


@pytest.mark.parametrize("fmt", ["html", "text"])
def test_preview_other_formats(seeded_project: Path, fmt: str) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, out, _ = invoke(project, "preview", "-k", "video generation", "--format", fmt, "--all")
    assert code == 0 and "video" in out.lower()
    assert ("<!doctype html>" in out.lower()) == (fmt == "html")


def test_preview_with_a_config_profile(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, out, _ = invoke(project, "preview", "--profile", "speech", "--since", "2025-10-16")
    assert code == 0 and "## speech" in out
    code, _, err = invoke(project, "preview", "--profile", "nope")
    assert code == 2 and err.startswith("error: no profile 'nope'")


def test_preview_on_an_empty_store_says_why(project: Path) -> None:
    code, out, _ = invoke(project, "preview", "-k", "speech")
    assert code == 0 and "no papers yet" in out


def test_run_ingests_and_writes_the_digest(project: Path) -> None:
    code, out, err = invoke(project, "run")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("ingest: 331 new, 33 updated, 0 skipped; 331 papers")
    md = project / "var" / "preview" / "digest-2025-12-31.md"
    assert md.exists() and "## speech" in md.read_text()
    assert (project / "var" / "preview" / "digest-2025-12-31.html").exists()


# -- bad input: one clear line, exit code 2, nothing lost ------------------------------


def _stored(project: Path) -> int:
    """How many papers the project's store holds (`digest papers`)."""
    _, out, _ = invoke(project, "papers", "--json")
    return len(out.splitlines())


def test_not_utf8_file(seeded_project: Path, tmp_path: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    before = _stored(project)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\xe9 au lait\n\nAn abstract.\n".encode("latin-1"))
    code, out, err = invoke(project, "ingest", str(bad))
    assert code == 2
    assert err == f"error: {bad}:1: not UTF-8 text (byte 0xe9); save the capture as UTF-8\n"
    assert out == "0 new, 0 updated, 0 skipped\n"
    assert _stored(project) == before == 331


def test_an_empty_file_is_an_error_unless_read_as_a_capture(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out, err = invoke(project, "ingest", str(empty))
    assert (code, out) == (2, "0 new, 0 updated, 0 skipped\n")
    assert err == f"error: {empty}: empty file: nothing to read\n"
    code, out, err = invoke(project, "ingest", "--kind", "listing", str(empty))
    assert (code, out) == (0, "0 new, 0 updated, 0 skipped\n")
    assert err == f"warning: {empty}: no paper entries found (empty or not a listing capture)\n"


def test_truncated_and_incomplete_entries_keep_the_good_ones(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    before = _stored(project)
    code, out, err = invoke(
        project,
        "ingest",
        str(FIXTURES / "listing" / "missing_parts.txt"),
        str(FIXTURES / "listing" / "truncated.txt"),
    )
    assert code == 0
    assert out == "3 new, 0 updated, 3 skipped\n"
    lines = err.splitlines()
    assert any(
        "missing_parts.txt:5: entry 'A Title Without Its Abstract' has no abstract" in line
        for line in lines
    )
    assert any("missing_parts.txt:19: metadata without a title; skipped" in line for line in lines)
    assert any("truncated.txt:15: capture ends mid-entry" in line for line in lines)
    assert _stored(project) == before + 3


def test_huge_file_is_refused_and_others_still_ingested(project: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    good = FIXTURES / "listing" / "no_metadata.txt"
    code, out, err = invoke(project, "ingest", str(huge), str(good))
    assert code == 2
    assert err == (
        f"error: {huge}: file is 52.4 MB, over the 32 MB limit; split it or raise "
        "[ingest] max_file_mb in config.toml\n"
    )
    assert out == "2 new, 0 updated, 0 skipped\n"


def test_missing_path(project: Path) -> None:
    code, out, err = invoke(project, "ingest", "no/such/file.txt")
    assert out == "0 new, 0 updated, 0 skipped\n"
    assert code == 2 and err == "error: no/such/file.txt: no such file or directory\n"


def test_broken_config_names_file_key_and_value(project: Path) -> None:
    (project / "config.toml").write_text("[[sources]]\nname = 'x'\nkind = 'rss?'\npath = 'a'\n")
    code, out, err = invoke(project, "ingest")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {project / 'config.toml'}: sources[0].kind = 'rss?': unknown kind; "
        "expected one of: auto, feed, hf_daily, listing\n"
    )
    (project / "config.toml").write_text("[store\n")
    code, _, err = invoke(project, "papers")
    assert (
        code == 2
        and err.startswith(f"error: {project / 'config.toml'}: not valid TOML")
        and err.count("\n") == 1
    )


def test_bad_keywords_are_one_line(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, _, err = invoke(project, "preview", "--keywords", " , ")
    assert code == 2 and err.startswith("error: --keywords ' , ': ") and err.count("\n") == 1
    code, _, err = invoke(project, "preview")
    assert code == 2 and "either --keywords" in err


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and command.help and len(command.help) > 30, name


# -- the installed console script ------------------------------------------------------


def _script() -> str:
    found = shutil.which("digest", path=str(Path(sys.executable).parent))
    assert found, "the `digest` console script is not installed next to this Python"
    return found


def test_installed_script_end_to_end(project: Path) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    ingest = subprocess.run(
        [_script(), "ingest"], cwd=project, capture_output=True, text=True, env=env, timeout=60
    )
    assert (ingest.returncode, ingest.stdout) == (0, "331 new, 33 updated, 0 skipped\n")
    assert ingest.stderr == ""  # no progress bar when piped
    papers = subprocess.run(
        [_script(), "papers", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert len(papers.stdout.splitlines()) == 331
    bad = subprocess.run(
        [_script(), "--config", "missing.toml", "ingest"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr == "error: missing.toml: no such config file; pass --config PATH or create it\n"
    )
    assert "Traceback" not in bad.stderr
    module = subprocess.run(
        [sys.executable, "-m", "digest", "--help"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert module.returncode == 0 and "papers-digest" in module.stdout


def test_progress_bar_on_a_terminal_only(project: Path) -> None:
    """With stderr on a pseudo-terminal, ingest draws a rich progress bar there."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [_script(), "ingest"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=60)
    os.close(master)
    assert stdout == b"331 new, 33 updated, 0 skipped\n"
    assert b"ingest" in b"".join(chunks) and "━".encode() in b"".join(chunks)


def test_ranking_values_are_checked(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    with (project / "config.toml").open("a") as f:
        f.write("\n[ranking]\npopularity_weight = 3.0\n")
    code, _, err = invoke(project, "rank", "-k", "LoRA")
    assert code == 2 and "ranking.popularity_weight + ranking.recency_weight" in err
    text = (project / "config.toml").read_text().replace("popularity_weight = 3.0", "k1 = nan")
    (project / "config.toml").write_text(text)
    code, _, err = invoke(project, "rank", "-k", "LoRA")
    assert code == 2 and "ranking.k1 = nan: must be a finite number" in err


def test_odd_weights_are_refused(seeded_project: Path) -> None:
    project = seeded_project  # the seeds, ingested once per session
    code, _, err = invoke(project, "rank", "-k", "LoRA^-1")
    assert code == 2 and "a weight is a plain number" in err and err.count("\n") == 1


def test_an_unwritable_preview_directory_is_reported_and_the_run_goes_on(project: Path) -> None:
    with (project / "config.toml").open("a") as f:
        f.write('\n[render]\npreview_dir = "config.toml"\n')  # a file, not a directory
    text = (project / "config.toml").read_text()
    # keep only the last [render] table: TOML forbids two
    first = text.index("[render]")
    second = text.index("[render]", first + 1)
    end = text.index("\n[", first + 1)
    (project / "config.toml").write_text(text[:first] + text[end + 1 : second] + text[second:])
    code, out, err = invoke(project, "run")
    assert code == 1 and "cannot write the preview digest" in err and "Traceback" not in err
    assert "publish:" in out  # sent and published all the same
    assert (project / "site" / "index.html").exists()


def test_titles_are_printed_without_terminal_controls(project: Path, tmp_path: Path) -> None:
    capture = tmp_path / "c.txt"
    capture.write_text(
        "Evil \x1b[31mred\x1b[0m title\n\n" + "An abstract about speech. " * 12 + "\n"
    )
    invoke(project, "ingest", str(capture))
    _, out, _ = invoke(project, "papers")
    assert "\x1b" not in out and "Evil [31mred[0m title" in out
