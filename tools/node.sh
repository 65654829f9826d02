#!/usr/bin/env bash
# Runs the command given with a Node.js of 20.19 or later first on PATH: the
# machine's when it is recent enough, else Node 20 from the npm registry's
# node-linux-<arch> package, installed once into build/node. Debian 12's own
# Node is 18, too old for Vite 7 and for `node --test --test-concurrency`.
# --check: only says (exit status) whether such a Node is there already.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NODE_PACKAGE_VERSION=20.20.2

node_ok() {
    command -v node >/dev/null 2>&1 &&
        node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a==20&&b>=19)?0:1)'
}

case "$(uname -m)" in
x86_64) arch=x64 ;;
aarch64) arch=arm64 ;;
*) arch="" ;;
esac
if ! node_ok && [ -n "$arch" ]; then
    export PATH="$root/build/node/node_modules/node-linux-$arch/bin:$PATH"
    hash -r # bash remembers where it found the old node
fi
if [ "${1:-}" = "--check" ]; then
    node_ok
    exit
fi
if ! node_ok && [ -n "$arch" ]; then
    command -v npm >/dev/null 2>&1 || bash "$root/tools/deps.sh" nodejs npm
    echo "  NPM     node-linux-$arch@$NODE_PACKAGE_VERSION into build/node (this machine's Node is $(node --version 2>/dev/null || echo missing))" >&2
    mkdir -p "$root/build/node"
    npm install --prefix "$root/build/node" --no-save --no-audit --no-fund --no-package-lock \
        --loglevel=error "node-linux-$arch@$NODE_PACKAGE_VERSION" >/dev/null
    hash -r
fi
if ! node_ok; then
    echo "ratekit: the dashboard and its tests need Node 20.19 or later (https://nodejs.org); node is $(node --version 2>/dev/null || echo missing)" >&2
    exit 1
fi
exec "$@"
