"""What a chapter displays about its run: a stored figure, and the banner over a results page.

Kept apart from ``diag.workflow`` (which computes and stores) so that the workflow runs without
IPython: the jobs and the CLI never display anything.
"""

from __future__ import annotations

from html import escape
from typing import Callable


def figure(run, name: str, draw: Callable[[], object]):
    """Show ``run``'s stored figure ``name`` (drawn first when computing, ``Run.stored_figure``); returns
    the numbers stored with it, or None (and says so) when a rendered results folder lacks it."""
    from IPython.display import Image, display

    path, numbers = run.stored_figure(name, draw)
    if path is None:
        print(f"(not in this results folder: figures/{name}.png; run without --from-results to draw it)")
        return None
    display(Image(filename=str(path)))  # the stored PNG, as a render from results shows it
    return numbers


def banner(run, *scopes: str) -> None:
    """A visible warning on the page when its results are partial or made with other settings, what
    it left out, and where to read how it was computed.

    ``scopes``: what the page shows ("zero-shot", "full-shot", "fid"); the data and the generated
    sets are always checked.
    """
    from IPython.display import HTML, Markdown, display

    profile = run.config.profile
    lines = run.differences(("data", "sets", *scopes))
    if lines:
        items = "".join(f"<li>{escape(line)}</li>" for line in lines)
        display(
            HTML(
                f'<div class="admonition warning"><p class="admonition-title">Partial / non-{profile} '
                f"settings: these numbers are not the {profile} profile's</p><ul>{items}</ul></div>"
            )
        )
    notes = run.left_out(scopes)
    if notes:
        display(HTML(f'<div class="admonition note"><p>{escape(" ".join(notes))}</p></div>'))
    display(
        Markdown(
            "When, on what machine, with which versions, data and settings these numbers were computed, and "
            "each step's time: [How this book was computed](../computed.md)."
        )
    )
