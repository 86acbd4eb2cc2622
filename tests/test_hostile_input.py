"""Issue 14 item 6: no traceback for any input.

Property tests drive every CLI command (in-process, click's CliRunner) and every route
of the reader pages (through the real server on 127.0.0.1, one keep-alive connection)
with hostile values: overflows, NaN, NUL bytes, traversal, huge and
odd text. A command may exit 0, 1 or 2 and nothing else, never with a traceback; a page
answers below 500. Then the bounded parsers and the damaged store, case by case.
"""

from __future__ import annotations

import http.client
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import cli
from digest.config import Config, load_config
from digest.errors import SourceError
from digest.rank import make_profile
from digest.serve import make_server, serve_in_thread
from digest.sources import html_listing
from digest.store import Store
from digest.tokens import load_secret, make_token
from tests.conftest import copy_project
from tests.factories import make_paper

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
#: Values that broke, or could break, a parser at the edge.
HOSTILE = [
    "99999999999999999999",
    "-99999999999999999999",
    "1e309",
    "-1",
    "0",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "../../..",
    "../etc/passwd",
    "/dev/zero",
    "\u202e\u0663",
    "２０２５-01-01",
    "9999-12-31",
    "0001-01-01",
    "2025-02-30",
    "99999-01-01T00:00",
    "25:61",
    "Etc/GMT+99",
    "x" * 5000,
    "'\"<script>alert(1)</script>",
    "a\r\nX-Injected: 1",
    "unsubscribe.1.99999999999999999999.0000000000000000000000000000000000000000",
    "-",
    "ada@example.org",
]
#: Text without lone surrogates (which no command line or URL can carry).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
VALUES = st.one_of(st.sampled_from(HOSTILE), TEXT)
#: Commands that serve or schedule for ever when their input is good, or run the whole
#: day: driven by `test_long_running_commands_refuse_hostile_options` instead.
LONG_RUNNING = {"serve", "schedule", "run"}
#: Of those, the ones whose option parsing is driven below (schedule ignores --now and
#: --db until it starts, and then runs for ever).
DRIVEN_LONG = ("run", "serve")
#: Options that would only open a browser or write outside the project: not drawn.
NOT_DRAWN = {"open_browser"}


@dataclass
class Project:
    root: Path
    config: Config
    tokens: dict[str, str]  #: purpose -> a valid token of the one reader


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = copy_project(tmp_path_factory.mktemp("hostile"))
    config = load_config(root / "config.toml", required=True)
    with Store(config.store_path) as store:
        store.add_papers(
            [make_paper(f"LoRA paper {n}", "LoRA adapters.", seen=NOW) for n in range(3)]
        )
        sub, _ = store.upsert_subscriber(
            "ada@example.org", make_profile("p", ("LoRA",)), now=NOW, confirmed=True
        )
    secret = load_secret(config)
    purposes = ("confirm", "unsubscribe", "manage")
    tokens = {p: make_token(secret, p, sub.id, sub.email, NOW) for p in purposes}
    (root / "site").mkdir()
    (root / "site" / "index.html").write_text("<h1>archive</h1>")
    return Project(root, config, tokens)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = [c for c in _commands(cli) if c[0] not in LONG_RUNNING]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command with some of its options and arguments, each given a hostile value."""
    path = draw(st.sampled_from(COMMANDS))
    args = list(path)
    for param in _command(path).params:
        if param.name in NOT_DRAWN or not draw(st.booleans()):
            continue
        if isinstance(param, click.Argument):
            args.append(draw(VALUES))
        elif isinstance(param, click.Option):
            if param.is_flag:
                args.append(param.opts[0])
            else:
                args += [param.opts[0], draw(VALUES)]
    if draw(st.booleans()):
        args = ["--now", draw(VALUES), *args]
    return args


def _assert_clean_exit(result: click.testing.Result, args: list[str]) -> None:
    shown = [a[:60] for a in args]
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown,
        repr(result.exception),
    )
    assert result.exit_code in (0, 1, 2), (shown, result.exit_code, result.output[-300:])
    assert "Traceback" not in result.output, shown


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=command_lines())
def test_every_command_exits_0_1_or_2_for_hostile_values(project: Project, args: list[str]) -> None:
    here = Path.cwd()
    os.chdir(project.root)  # relative paths a command writes stay in the project
    try:
        result = CliRunner().invoke(cli, ["--config", "config.toml", *args], input="")
    finally:
        os.chdir(here)
    _assert_clean_exit(result, args)


@pytest.mark.parametrize("command", DRIVEN_LONG)
@pytest.mark.parametrize(
    "options",
    [
        ["--now", "99999999999999999999"],
        ["--now", "nan"],
        ["--config", "missing.toml"],
        ["--db", "/dev/zero"],
    ],
)
def test_long_running_commands_refuse_hostile_options(
    project: Project, command: str, options: list[str]
) -> None:
    extra = ["--port", "99999999999999999999"] if command == "serve" else []
    here = Path.cwd()
    os.chdir(project.root)
    try:
        result = CliRunner().invoke(cli, [*options, command, *extra], input="")
    finally:
        os.chdir(here)
    _assert_clean_exit(result, [*options, command])
    assert result.exit_code == 2


# -- every route ------------------------------------------------------------------------

ROUTES = [
    ("GET", "/preview", ("keywords", "exclude", "format", "limit")),
    ("GET", "/subscribe/preview", ("keywords", "exclude", "frequency")),
    ("GET", "/subscribe", ("email", "keywords")),
    ("POST", "/subscribe", ()),
    ("GET", "/confirm", ("token",)),
    ("POST", "/confirm", ("token",)),
    ("GET", "/unsubscribe", ("token",)),
    ("POST", "/unsubscribe", ("token",)),
    ("GET", "/manage", ("token", "done")),
    ("POST", "/manage", ("token",)),
    ("GET", "/rate", ("token", "paper", "vote")),
    ("POST", "/rate", ("token", "paper", "vote")),
    ("GET", "/_web/", ()),
    ("GET", "/", ()),
]
FORM_FIELDS = ("email", "keywords", "exclude", "timezone", "send_at", "frequency", "action")


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[tuple[str, int]]:
    srv = make_server(
        project.config,
        project.config.store_path,
        lambda: NOW,
        port=0,
        site_dir=project.root / "site",
    )
    thread = serve_in_thread(srv)
    try:
        yield srv.address
    finally:
        srv.stop()
        thread.join()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_route_answers_below_500_for_hostile_values(
    project: Project, server: tuple[str, int], data: st.DataObject
) -> None:
    method, path, names = data.draw(st.sampled_from(ROUTES))
    query = []
    for name in names:
        if data.draw(st.booleans()):
            value = data.draw(st.one_of(VALUES, st.sampled_from(list(project.tokens.values()))))
            query.append(f"{name}={quote(value)}")
    if path in ("/_web/", "/"):
        path += quote(data.draw(VALUES), safe="/%")
    target = path + ("?" + "&".join(query) if query else "")
    form = {name: data.draw(VALUES) for name in FORM_FIELDS if data.draw(st.booleans())}
    body = urlencode(form).encode() if method == "POST" else None
    conn = http.client.HTTPConnection(*server, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status < 500, (method, target[:120], response.status)


# -- bounded parsers and damaged stores ----------------------------------------------------


def test_a_deeply_nested_page_of_3_mb_is_refused_in_one_line() -> None:
    """330,000 nested elements: the HTML parser's work grows with depth times size, so the
    page is refused from its tags (one pass) before it is parsed."""
    depth = 330_000
    page = b"<!doctype html><html><body>" + b"<div>" * depth + b"</div>" * depth
    assert len(page) > 3_300_000
    with pytest.raises(SourceError) as caught:
        list(
            html_listing.parse(
                page,
                origin="deep.html",
                source="s",
                captured=date(2025, 10, 16),
                warn=lambda w: None,
            )
        )
    assert str(caught.value).startswith("deep.html: elements nested more than 512 deep")


def test_nesting_is_counted_from_tags_not_text() -> None:
    fine = b"<div>" * 10 + b"<p>" * 1000 + b"<br>" * 1000 + b"<img/>" * 1000 + b"</div>" * 10
    assert html_listing.nesting_depth(fine, 512) == 10
    hidden = b"<script>" + b"<div>" * 1000 + b"</script><!-- " + b"<div>" * 1000 + b" -->"
    assert html_listing.nesting_depth(hidden, 512) == 0
    assert html_listing.nesting_depth(b"<div>" * 1000, 512) == 513  # it stops past the limit


def test_cards_inside_cards_are_read_once() -> None:
    """Nested <article>s (each a card of its own): only the innermost, which holds no
    other card, is read; the outer ones would be read once per card inside them."""
    card = b'<article><h3><a href="/papers/2510.%05d">Paper %d</a></h3><p>Abstract.</p>'
    page = b"<html><body>" + b"".join(card % (n, n) for n in range(300)) + b"</article>" * 300
    warnings: list[object] = []
    papers = list(
        html_listing.parse(
            page,
            origin="nested.html",
            source="s",
            captured=date(2025, 10, 16),
            warn=warnings.append,
        )
    )
    assert [p.title for p in papers] == ["Paper 299"]
    assert any("299 cards hold other cards" in str(w) for w in warnings)


@pytest.fixture
def damaged(project: Project, tmp_path: Path) -> Path:
    """A copy of the project's store with every page after the first overwritten."""
    path = tmp_path / "damaged.sqlite3"
    with sqlite3.connect(project.config.store_path) as db:
        db.execute(f"VACUUM INTO '{path}'")
    db.close()
    data = bytearray(path.read_bytes())
    data[4096:] = random.Random(0).randbytes(len(data) - 4096)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "command",
    [["papers"], ["send", "--dry-run"], ["send"], ["subscribers"], ["serve", "--port", "0"]],
)
def test_a_damaged_store_is_one_line_and_exit_2(
    project: Project, damaged: Path, command: list[str]
) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(project.config.path), "--db", str(damaged), *command]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {damaged}: ") and result.stderr.count("\n") == 1
    assert "corrupt" in result.stderr


def test_subscribers_import_refuses_a_fifo_and_a_device(project: Project, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        result = CliRunner().invoke(
            cli, ["--config", str(project.config.path), "subscribers", "import", str(path)]
        )
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {path}: "), result.output
        assert result.stderr.count("\n") == 1


def test_a_config_that_is_a_fifo_a_device_a_folder_or_huge_is_one_line(tmp_path: Path) -> None:
    """--config reads like a capture: regular files only, at most 1 MB (a FIFO would block
    and /dev/zero read for ever)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.toml"
    huge.write_text("#" * (2 << 20))
    for path in (fifo, Path("/dev/zero"), tmp_path, huge):
        result = CliRunner().invoke(cli, ["--config", str(path), "papers"])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {path}: "), result.output
        assert result.stderr.count("\n") == 1
