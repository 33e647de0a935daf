#!/usr/bin/env bash
# FederationCore is the pure round logic: it may not import networking, NIO, Hummingbird, SQLite, curl or Dispatch.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rnE '^\s*(@_exported |public |internal |private )?import +(NIO[A-Za-z]*|Hummingbird[A-Za-z]*|CSQLite[A-Za-z0-9]*|CCurl|CurlHTTP|FoundationNetworking|Dispatch|Foundation)\b' Sources/FederationCore || true)
if [ -n "$bad" ]; then
  echo "FederationCore must stay free of I/O imports:"
  echo "$bad"
  exit 1
fi
echo "core import check: ok"
