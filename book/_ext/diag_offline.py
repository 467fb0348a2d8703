"""A Sphinx extension of the book's own: the site must work offline and point at nobody else's repository.

Jupyter Book 1 always loads sphinx-thebe, which writes into every page a configuration that names
an unrelated Binder repository and a script that would fetch Thebe from unpkg.com on demand. The book
does not offer live code (its notebooks are executed by papermill beforehand), so both are dropped.
"""

from __future__ import annotations

THEBE_MARKS = ("x-thebe-config", "kernelName =")


def drop_thebe_nodes(app, doctree, docname) -> None:
    """Remove the raw HTML nodes sphinx-thebe appended to the page (it runs on this event too, before us)."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        if any(mark in node.astext() for mark in THEBE_MARKS):
            node.parent.remove(node)


def drop_thebe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Remove sphinx-thebe's scripts (its loader and the line that names unpkg.com) from the page."""
    scripts = context.get("script_files")
    if scripts is None:
        return
    kept = [
        script
        for script in scripts
        if "sphinx-thebe" not in str(script) and "THEBE_JS_URL" not in str(getattr(script, "attributes", {}).get("body", ""))
    ]
    scripts[:] = kept


def setup(app):
    app.connect("doctree-resolved", drop_thebe_nodes, priority=900)
    app.connect("html-page-context", drop_thebe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
