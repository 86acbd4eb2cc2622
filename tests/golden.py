"""Golden files: compare output with a file kept beside the test's inputs.

    assert_golden(FIXTURES / "golden" / "email.txt", email.text)
    assert_golden(capture.with_suffix(".expected.json"), parser_output(papers, warnings))

`UPDATE_GOLDEN=1 pytest ...` rewrites the files from what the code gives now (then
read the diff before committing it: the golden file is the specification).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from digest.model import Paper, SourceWarning


def updating() -> bool:
    """Whether this run rewrites golden files (UPDATE_GOLDEN=1)."""
    return os.environ.get("UPDATE_GOLDEN") == "1"


def assert_golden(path: Path, actual: str | dict[str, Any] | list[Any]) -> None:
    """`actual` equals the golden file `path`; with UPDATE_GOLDEN=1 the file is rewritten.

    A `str` is compared with the file's text exactly; anything else is JSON, compared as
    data and written indented, non-ASCII kept as is.
    """
    if isinstance(actual, str):
        text = actual
    else:
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if updating():
        path.write_text(text, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"{path}: no golden file; UPDATE_GOLDEN=1 writes it from this output")
    expected = path.read_text(encoding="utf-8")
    if isinstance(actual, str):
        assert actual == expected, f"differs from {path} (UPDATE_GOLDEN=1 rewrites it)"
    else:
        assert json.loads(text) == json.loads(expected), (
            f"differs from {path} (UPDATE_GOLDEN=1 rewrites it)"
        )


def paper_record(paper: Paper) -> dict[str, Any]:
    """A paper as JSON data (dates as ISO strings)."""
    record: dict[str, Any] = json.loads(json.dumps(asdict(paper), default=str))
    return record


def parser_output(papers: Iterable[Paper], warnings: Iterable[SourceWarning]) -> dict[str, Any]:
    """What a parser gave, as the `*.expected.json` golden files hold it."""
    return {"papers": [paper_record(p) for p in papers], "warnings": [str(w) for w in warnings]}
