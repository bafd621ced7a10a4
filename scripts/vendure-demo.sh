#!/usr/bin/env bash
# One command: a local Vendure 3.7.3 with the sample data on http://127.0.0.1:3000/admin-api
# (superadmin / superadmin), for trying fast-seller against a real shop.
#
#   scripts/vendure-demo.sh            # installs (npm ci) if needed, then runs in the foreground
#   VENDURE_PORT=3100 VENDURE_DATA_DIR=/tmp/vendure scripts/vendure-demo.sh
#
# The first boot loads the sample data into integrations/vendure/data (tens of seconds);
# later boots reuse it. Delete that directory to start over.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../integrations/vendure" && pwd)"
command -v node >/dev/null || { echo "vendure-demo: Node.js 20 or later is needed (node not found)" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    echo "vendure-demo: Node.js 20 or later is needed (found $(node --version))" >&2
    exit 1
fi

cd "$dir"
# npm ci again only when the lockfile changed since the last install.
stamp=node_modules/.fast-seller-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    npm ci --no-audit --no-fund
    cp package-lock.json "$stamp"
fi

export VENDURE_PORT="${VENDURE_PORT:-3000}"
export VENDURE_HOST="${VENDURE_HOST:-127.0.0.1}"
export VENDURE_DATA_DIR="${VENDURE_DATA_DIR:-$dir/data}"
export SUPERADMIN_USERNAME="${SUPERADMIN_USERNAME:-superadmin}"
export SUPERADMIN_PASSWORD="${SUPERADMIN_PASSWORD:-superadmin}"
export VENDURE_DISABLE_TELEMETRY=true
exec node server.js
