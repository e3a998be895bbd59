#!/usr/bin/env bash
# The Admin API calls that set up what kong.yml (or kong-plugins.yml) declares,
# on a running Kong with a database (traditional mode or a hybrid control plane).
#
#   KONG_ADMIN_URL=http://localhost:8001 kong-example/admin-api.sh [filter-chain|plugin]
#
# filter-chain (default): Kong 3.5–3.9, the filter_chains entity.
# plugin:                 Kong 3.9+, the filter as a plugin instance.
#
# Kong validates each `config` against scopegate.meta.json's config_schema and
# answers 400 with the failing field on a bad push: nothing reaches the filter.
# The bodies are admin-api/*.json (tests/e2e/test_examples.py checks them).
set -euo pipefail
cd "$(dirname "$0")"
ADMIN=${KONG_ADMIN_URL:-http://localhost:8001}
MODE=${1:-filter-chain}
json=(-H 'content-type: application/json')

# The upstream service and its route (strip_path off: the upstream sees the
# path Scopegate authorized).
curl -fsS -X PUT "$ADMIN/services/payments" "${json[@]}" \
  --data '{"url": "http://payments.internal:8080"}'
echo
curl -fsS -X PUT "$ADMIN/services/payments/routes/payments" "${json[@]}" \
  --data '{"paths": ["/"], "strip_path": false}'
echo

case "$MODE" in
  filter-chain)
    # Create or replace the filter chain of the service (PUT by name is an upsert).
    curl -fsS -X PUT "$ADMIN/services/payments/filter-chains/scopegate" "${json[@]}" \
      --data @admin-api/filter-chain.json
    ;;
  plugin)
    # Kong 3.9+: the filter as a plugin on the service.
    curl -fsS -X POST "$ADMIN/services/payments/plugins" "${json[@]}" \
      --data @admin-api/plugin.json
    ;;
  *)
    echo "usage: $0 [filter-chain|plugin]" >&2
    exit 2
    ;;
esac
echo

# Changing the configuration later: send the whole new document, e.g.
#   curl -X PATCH "$ADMIN/filter-chains/scopegate" -H 'content-type: application/json' \
#     --data @admin-api/filter-chain.json
# and check it first with `scopegate check-config` (see README.md: Kong's schema
# cannot see cross-references such as rule providers or duplicate issuers).
