#!/bin/bash
# docker-compose.yml mounts this into the ClickHouse image's /docker-entrypoint-initdb.d: on the
# first start it creates the dashboard's read-only login (`burnwatch ui` only ever SELECTs).
set -euo pipefail
clickhouse client --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" --multiquery <<SQL
CREATE USER IF NOT EXISTS burnwatch_ui IDENTIFIED WITH sha256_password BY '${BURNWATCH_UI_PASSWORD:-burnwatch-ui}';
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO burnwatch_ui;
SQL
