"""A Sphinx extension of the book's own: each chapter names its source notebook and, when the book
knows its repository, offers to open that notebook in Binder, Colab or a JupyterHub.

Jupyter Book's own launch buttons open the page's path (``book/chapters/04-zero-shot.ipynb``), which
exists only in the build folder, not in the repository: the chapters' sources are
``notebooks/<name>.ipynb``. So the links are made here, from one setting in ``_config.yml``
(``sphinx.config.diag_launch``: the repository's URL and branch, and which services to offer).
The Pages workflow fills the URL and branch in from the repository it runs in, through the
``DIAG_REPOSITORY_URL`` and ``DIAG_REPOSITORY_BRANCH`` environment variables; a local build without
a URL shows no launch link at all, so none can be broken.
"""

from __future__ import annotations

import html
import os
from urllib.parse import quote

CHAPTERS = "book/chapters/"  # the executed notebooks' pages; their sources are notebooks/<name>.ipynb


def launch_settings(config: dict) -> dict:
    """``diag_launch`` with the environment's repository and branch (the Pages workflow's) over it."""
    settings = {"repository_url": "", "branch": "main", "binderhub_url": "", "colab_url": "", "jupyterhub_url": ""}
    settings.update({k: v for k, v in (config or {}).items() if v is not None})
    settings["repository_url"] = os.environ.get("DIAG_REPOSITORY_URL") or settings["repository_url"]
    settings["branch"] = os.environ.get("DIAG_REPOSITORY_BRANCH") or settings["branch"]
    return settings


def repository(settings: dict) -> str:
    """The repository's URL as the links use it: no trailing slash, no ``.git``."""
    return settings["repository_url"].rstrip("/").removesuffix(".git")


def launch_links(name: str, settings: dict) -> list[tuple[str, str]]:
    """(label, URL) for each service configured, opening ``notebooks/<name>.ipynb`` at the branch; none
    without a GitHub repository URL."""
    url = repository(settings)
    if not url.startswith("https://github.com/"):
        return []
    owner_repo, branch = url.removeprefix("https://github.com/"), settings["branch"]
    path = f"notebooks/{name}.ipynb"
    links = []
    if settings["binderhub_url"]:
        hub = settings["binderhub_url"].rstrip("/")
        links.append(("Binder", f"{hub}/v2/gh/{owner_repo}/{quote(branch, safe='')}?labpath={quote(path)}"))
    if settings["colab_url"]:
        links.append(("Colab", f"{settings['colab_url'].rstrip('/')}/github/{owner_repo}/blob/{branch}/{path}"))
    if settings["jupyterhub_url"]:  # nbgitpuller clones the repository into the user's server, then opens the notebook
        repo_name = owner_repo.split("/")[1]
        query = f"repo={quote(url, safe='')}&branch={quote(branch, safe='')}&urlpath={quote(f'lab/tree/{repo_name}/{path}', safe='')}"
        links.append(("JupyterHub", f"{settings['jupyterhub_url'].rstrip('/')}/hub/user-redirect/git-pull?{query}"))
    return links


def source_block(name: str, settings: dict) -> str:
    """The HTML shown under a chapter's title: its source notebook, and where to open it."""
    path = f"notebooks/{name}.ipynb"
    url = repository(settings)
    source = f"<code>{path}</code>"
    if url.startswith("https://"):
        source = f'<a href="{html.escape(url)}/blob/{html.escape(settings["branch"])}/{path}"><code>{path}</code></a>'
    links = " ".join(
        f'<a class="diag-launch" href="{html.escape(href)}">{label}</a>' for label, href in launch_links(name, settings)
    )
    opened = f" Open it in {links}." if links else ""
    return f'<p class="diag-source">Source notebook: {source} (this page is it, executed).{opened}</p>'


def add_source_block(app, doctree, docname) -> None:
    """Put the source block right under a chapter page's title."""
    if not docname.startswith(CHAPTERS):
        return
    from docutils import nodes

    name = docname.removeprefix(CHAPTERS)
    block = nodes.raw("", source_block(name, app.config.diag_launch), format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, block)
        return
    title = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
    section.insert(title + 1, block)


def merge_environment(app, config) -> None:
    """The environment's repository into the config value itself, so that a build with another URL
    than the last one rewrites every page (Sphinx compares its "html" config values between builds)."""
    config.diag_launch = launch_settings(config.diag_launch)


def setup(app):
    app.add_config_value("diag_launch", {}, "html")
    app.connect("config-inited", merge_environment)
    app.connect("doctree-resolved", add_source_block)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
