#!/usr/bin/env python3
"""Copies the example files into INTEGRATION.md, so that the doc shows
exactly the files the tests run. A code block right after a line
`<!-- file: examples/x/y -->` is replaced by that file.

    /usr/bin/python3 tests/integration/recipes/sync_doc.py          # rewrite
    /usr/bin/python3 tests/integration/recipes/sync_doc.py --check  # exit 1 when stale
"""

import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DOC = os.path.join(ROOT, "INTEGRATION.md")
MARK = re.compile(r"^<!-- file: (\S+) -->\n```(\w*)\n.*?^```\n", re.M | re.S)
LANG = {".py": "python", ".js": "js", ".json": "json", ".yml": "yaml", ".yaml": "yaml",
        ".conf": "nginx", ".sh": "sh", "Caddyfile": "caddyfile"}


def language(path):
    base = os.path.basename(path)
    return LANG.get(base) or LANG.get(os.path.splitext(base)[1], "")


def synced(text):
    def block(m):
        path = m.group(1)
        with open(os.path.join(ROOT, path)) as f:
            body = f.read()
        if not body.endswith("\n"):
            body += "\n"
        return f"<!-- file: {path} -->\n```{language(path)}\n{body}```\n"

    return MARK.sub(block, text)


def shown_files(text):
    return [m.group(1) for m in MARK.finditer(text)]


def main():
    with open(DOC) as f:
        text = f.read()
    new = synced(text)
    if "--check" in sys.argv:
        if new != text:
            sys.exit("INTEGRATION.md differs from examples/: run " + os.path.relpath(__file__, ROOT))
        return
    if new != text:
        with open(DOC, "w") as f:
            f.write(new)


if __name__ == "__main__":
    main()
