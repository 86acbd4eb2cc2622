"""Profile pages: a profile's recent picks, and one page per month of its older ones.

A year of picks on one page would be re-rendered whole every day; so `profiles/<slug>.html`
shows the picks of the days the index shows (`[publish] recent_days`) and lists every
month with picks, each on `profiles/<slug>/YYYY-MM.html`. A new day re-renders the
front page and the page of its own month only: a month page's inputs are its days.
"""

from __future__ import annotations

import functools
from datetime import date

import jinja2

from digest.publish.manifest import inputs_hash
from digest.publish.site import Page, profiles_signature, render
from digest.publish.views import Archive, ProfileInfo, day_href, item_view


def month_page(info: ProfileInfo, month: str) -> str:
    """The path of a profile's page for one month (`YYYY-MM`)."""
    return f"profiles/{info.slug}/{month}.html"


def _months(days: list[date]) -> dict[str, list[date]]:
    """Days grouped by `YYYY-MM`, newest month first (days keep their order)."""
    out: dict[str, list[date]] = {}
    for day in days:
        out.setdefault(day.isoformat()[:7], []).append(day)
    return out


def _render_profile(
    archive: Archive,
    env: jinja2.Environment,
    index: int,
    days: list[date],
    root: str,
    month: str | None,
    months: list[tuple[str, str, int]],
) -> bytes:
    info = archive.profiles[index]
    picks = archive.profile_picks(index, days)
    by_day: dict = {}
    for p in picks:
        by_day.setdefault(p.day, []).append(item_view(archive, p, root))
    return render(
        env,
        "site/profile.html.j2",
        root=root,
        page_title=f"{info.name}{' ' + month if month else ''} — {archive.title}",
        profile=info,
        by_day=[(d, day_href(root, d), items) for d, items in by_day.items()],
        count=len(picks),
        month=month,
        recent_days=archive.recent_days,
        months=months,
        site_title=archive.title,
        profiles=archive.profiles,
    )


def profile_pages(archive: Archive, env: jinja2.Environment, globals_key: str) -> list[Page]:
    """Every profile's front page and month pages."""
    profiles_sig = profiles_signature(archive)
    recent = archive.days[: archive.recent_days]
    months = _months(archive.days)
    pages: list[Page] = []
    for i, info in enumerate(archive.profiles):
        counts = {
            month: sum(archive.picks_per_profile(d)[i] for d in days)
            for month, days in months.items()
        }
        listed = [(m, n) for m, n in counts.items() if n]
        front_months = [(m, f"../{month_page(info, m)}", n) for m, n in listed]
        key = inputs_hash(
            globals_key,
            profiles_sig,
            i,
            archive.recent_days,
            [(d.isoformat(), archive.day_keys[d]) for d in recent],
            listed,
        )
        front = functools.partial(
            _render_profile, archive, env, i, recent, "../", None, front_months
        )
        pages.append(Page(info.page, key, front))
        for month, n in listed:
            days = months[month]
            key = inputs_hash(
                globals_key,
                profiles_sig,
                i,
                month,
                n,
                [(d.isoformat(), archive.day_keys[d]) for d in days],
            )
            render_month = functools.partial(
                _render_profile, archive, env, i, days, "../../", month, []
            )
            pages.append(Page(month_page(info, month), key, render_month))
    return pages
