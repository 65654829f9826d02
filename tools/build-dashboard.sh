#!/usr/bin/env bash
# Builds the dashboard into dashboard/dist with Node 20.19 or later (the
# machine's, or one tools/node.sh installs). A kit that ships dashboard/dist
# already built needs no Node to run.
# --install: only installs dashboard/node_modules (the end-to-end tests need
# them even when dist/ is already built).
set -euo pipefail
tools="$(cd "$(dirname "$0")" && pwd)"
cd "$tools/../dashboard"
if [ "${1:-}" != "--install" ] && [ -f dist/index.html ] && ! bash "$tools/node.sh" --check; then
    echo "dashboard: Node 20.19+ not found; keeping the dashboard already built in dashboard/dist"
    touch dist/index.html
    exit 0
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "  NPM     ci (dashboard)"
    bash "$tools/node.sh" npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
[ "${1:-}" = "--install" ] && exit 0
echo "  VITE    dashboard/dist"
bash "$tools/node.sh" npm run --silent build >/dev/null
