"""What a reader's first search downloads from a published archive, in headless Chromium.

    python bench/search.py SITE_DIR [QUERY ...]

Serves SITE_DIR on 127.0.0.1, and for each query opens the index page in a fresh browser
context (nothing cached), types the query, and sums the bytes of the search files the
page loaded (search-index.js, search/...; the page and search.js apart). Then the site's
search index on disk: bytes of the files browsers load, of the day files the month index
is made from, and both per paper.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
QUERIES = ["lora", "fine-tuning", '"video diffusion"', "large language models", "speech -survey"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def first_search_bytes(site: Path, queries: list[str]) -> list[tuple[str, int, int, int]]:
    """(query, papers found, search files loaded, their bytes) of each first search."""
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
                page.press("#search-input", "Enter")
                page.wait_for_function(
                    "q => document.getElementById('search-results').dataset.query === q",
                    arg=query,
                    timeout=120_000,
                )
                count = int(page.get_attribute("#search-results", "data-count") or 0)
                sizes = page.evaluate(
                    "() => performance.getEntriesByType('resource')"
                    ".filter(e => /search-index|\\/search\\//.test(e.name))"
                    ".map(e => e.encodedBodySize)"
                )
                out.append((query, count, len(sizes), sum(sizes)))
                context.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> None:
    site = Path(sys.argv[1])
    queries = sys.argv[2:] or QUERIES
    loaded = [site / "search-index.js", *site.glob("search/*/*.js")]
    days = list(site.glob("search/days/*.json.gz"))
    papers = sum(len(json.loads(gzip.decompress(p.read_bytes()))["rows"]) for p in days)
    browser_bytes = sum(p.stat().st_size for p in loaded)
    day_bytes = sum(p.stat().st_size for p in days)
    print(f"{papers} papers; files browsers may load: {len(loaded)}, {browser_bytes:,} bytes")
    print(f"  {browser_bytes / max(papers, 1) / 1024:.2f} KB a paper")
    print(f"day files (input of the month index): {day_bytes:,} bytes", end="")
    print(f", {day_bytes / max(papers, 1) / 1024:.2f} KB a paper")
    for query, count, files, size in first_search_bytes(site, queries):
        print(f"first search {query!r}: {count} papers, {files} files, {size:,} bytes")


if __name__ == "__main__":
    main()
