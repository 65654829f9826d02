"""INTEGRATION.md shows the example files the recipe tests run, unchanged,
and shows every one of them."""

import os

from recipes import sync_doc

# Files a recipe runs but the doc need not show in full.
NOT_SHOWN = {"examples/express/package.json", "examples/express/package-lock.json",
             "examples/django/demo/__init__.py", "examples/django/demo/urls.py"}
RECIPES = ("nginx", "caddy", "traefik", "envoy", "python", "fastapi", "django", "flask",
           "express", "telegram", "redis")


def test_integration_md_shows_the_example_files_unchanged():
    with open(sync_doc.DOC) as f:
        text = f.read()
    assert sync_doc.synced(text) == text, \
        "INTEGRATION.md differs from examples/: run tests/integration/recipes/sync_doc.py"


def test_integration_md_shows_every_recipe_file():
    with open(sync_doc.DOC) as f:
        shown = set(sync_doc.shown_files(f.read()))
    files = set()
    for recipe in RECIPES:
        for top, dirs, names in os.walk(os.path.join(sync_doc.ROOT, "examples", recipe)):
            dirs[:] = [d for d in dirs if d not in ("node_modules", "__pycache__")]
            files |= {os.path.relpath(os.path.join(top, n), sync_doc.ROOT) for n in names}
    assert files - NOT_SHOWN - shown == set()
    assert shown <= files
