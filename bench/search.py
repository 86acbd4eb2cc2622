"""What a reader's first search downloads from a published archive, in headless Chromium.

    python bench/search.py SITE_DIR [QUERY ...]

Serves SITE_DIR on 127.0.0.1, and for each query opens the index page in a fresh browser
context (nothing cached), types the query, and sums the bytes of the search files the
page loaded for its first page of results (search-index.js, the stemmer and hash
scripts, search/...; the page and search.js apart). Beside it, the naive figure: every
search file the site has, which is what a search that loads the whole index (main's
shards of every day) would download. Then the index on disk: bytes of the files browsers
may load, of the day postings the months are cut from (build state), and both per paper.
"""

from __future__ import annotations

import functools
import http.server
import json
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: Rare and common words, phrases, an exclusion, a word no paper has (every month is
#: searched): "model" and "learning" are in most papers.
QUERIES = [
    "lora",
    "fine-tuning",
    '"video diffusion"',
    "large language models",
    "speech, -survey",
    "zebrafish",
    "retrieval augmented generation",
    "model",
    "learning, data",
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def first_search_bytes(site: Path, queries: list[str]) -> list[tuple[str, str, int, int, float]]:
    """(query, papers found, search files loaded, their bytes, milliseconds) of each first
    search ("120+": more months to search)."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for query in queries:
                context = browser.new_context()
                page = context.new_page()
                page.goto(base + "index.html")
                page.fill("#search-input", query)
                start = page.evaluate("() => performance.now()")
                page.press("#search-input", "Enter")
                page.wait_for_function(
                    "q => document.getElementById('search-results').dataset.query === q",
                    arg=query,
                    timeout=120_000,
                )
                ms = page.evaluate("() => performance.now()") - start
                count = page.get_attribute("#search-results", "data-count") or "0"
                if page.get_attribute("#search-results", "data-complete") != "1":
                    count += "+"
                sizes = page.evaluate(
                    "() => performance.getEntriesByType('resource')"
                    ".filter(e => /search-index|snowball|blake2b|\\/search\\//.test(e.name))"
                    ".map(e => e.encodedBodySize)"
                )
                out.append((query, count, len(sizes), sum(sizes), ms))
                context.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> None:
    site = Path(sys.argv[1])
    queries = sys.argv[2:] or QUERIES
    static = [site / "static" / n for n in ("snowball-english.js", "blake2b.js")]
    loaded = [site / "search-index.js", *static, *site.glob("search/**/*.js")]
    days = list(site.glob(".publish-search/*.bin"))
    index = (site / "search-index.js").read_text(encoding="ascii")
    months = json.loads(index.split(" = ", 1)[1].rstrip().removesuffix(";"))["months"]
    papers = sum(d[1] for m in months for d in m[3])
    browser_bytes = sum(p.stat().st_size for p in loaded if p.exists())
    day_bytes = sum(p.stat().st_size for p in days)
    print(f"{papers} papers; files browsers may load: {len(loaded)}, {browser_bytes:,} bytes")
    print(f"  {browser_bytes / max(papers, 1) / 1024:.2f} KB a paper")
    print(f"day postings (build state): {day_bytes:,} bytes", end="")
    print(f", {day_bytes / max(papers, 1) / 1024:.2f} KB a paper")
    for query, count, files, size, ms in first_search_bytes(site, queries):
        print(
            f"first search {query!r}: {count} papers, {files} files, {size:,} bytes"
            f" ({size / max(browser_bytes, 1):.4f} of the naive {browser_bytes:,});"
            f" {ms:.0f} ms"
        )


if __name__ == "__main__":
    main()
