#!/usr/bin/env python3
"""make dist: writes dist/ratekit-kit-<version>.zip — the sources, lua/,
schema/, the built dashboard, docs, compose files and examples; no
node_modules, no build output (but the dashboard's), no VCS files, no
local .env (it holds the admin token)."""

import os
import subprocess
import sys
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SKIP_DIRS = {".git", "build", "dist", "node_modules", "__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = (".db", ".db-wal", ".db-shm", ".pyc")


def is_secret(path):
    """A local settings file (.env, .env.production): it holds the admin
    token. Only the template, .env.example, ships."""
    name = os.path.basename(path)
    return (name == ".env" or name.startswith(".env.")) and name != ".env.example"


def tracked_files():
    """The files git tracks, or (in an unpacked kit) every file but the skipped ones."""
    if os.path.isdir(os.path.join(ROOT, ".git")):
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        return [f for f in out.decode().split("\0") if f]
    files = []
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not
                   os.path.relpath(os.path.join(top, d), ROOT) == "dashboard/dist"]
        files += [os.path.relpath(os.path.join(top, n), ROOT) for n in names]
    return files


def main():
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    dashboard = os.path.join(ROOT, "dashboard", "dist")
    if not os.path.isfile(os.path.join(dashboard, "index.html")):
        sys.exit("dist: the dashboard is not built (run make first)")
    files = [f for f in tracked_files() if not f.endswith(SKIP_SUFFIXES) and not is_secret(f)
             and not set(f.split("/")) & SKIP_DIRS and os.path.isfile(os.path.join(ROOT, f))]
    for top, _, names in os.walk(dashboard):
        files += [os.path.relpath(os.path.join(top, n), ROOT) for n in names]
    prefix = f"ratekit-kit-{version}"
    os.makedirs(os.path.join(ROOT, "dist"), exist_ok=True)
    path = os.path.join(ROOT, "dist", prefix + ".zip")
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(set(files)):
            z.write(os.path.join(ROOT, f), f"{prefix}/{f}")
    os.replace(path + ".tmp", path)
    print(f"dist: {os.path.relpath(path, ROOT)} ({len(set(files))} files, "
          f"{os.path.getsize(path) // 1024} KiB)")


if __name__ == "__main__":
    main()
