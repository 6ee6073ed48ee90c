-- The sharded layout (docs/clickhouse.md, "Sharded layout"): every shard holds the tables of the
-- numbered migrations, unchanged, in database {shard_database} (materialized views included, so
-- each shard rolls up its own events); database {database} holds a Distributed table of the same
-- name over each of them, on every server, so any server answers every analyst query.
-- `burnwatch migrate` applies this with CLICKHOUSE_CLUSTER / CLICKHOUSE_SHARD_URLS set; the
-- placeholders are identifiers checked before use.
-- A series' events, windows and rollups live on one shard (sharded by the series key); tables
-- deduplicated by their sorting key (ReplacingMergeTree) are sharded by that key, so FINAL and
-- argMax see every version of a row on one shard.
CREATE TABLE IF NOT EXISTS {database}.usage_events AS {shard_database}.usage_events ENGINE = Distributed({cluster}, {shard_database}, usage_events, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.usage_offsets AS {shard_database}.usage_offsets ENGINE = Distributed({cluster}, {shard_database}, usage_offsets, cityHash64(kafka_topic, kafka_partition));
CREATE TABLE IF NOT EXISTS {database}.cost_windows AS {shard_database}.cost_windows ENGINE = Distributed({cluster}, {shard_database}, cost_windows, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.cost_hourly AS {shard_database}.cost_hourly ENGINE = Distributed({cluster}, {shard_database}, cost_hourly, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.cost_daily AS {shard_database}.cost_daily ENGINE = Distributed({cluster}, {shard_database}, cost_daily, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.deployments AS {shard_database}.deployments ENGINE = Distributed({cluster}, {shard_database}, deployments, cityHash64(team, service, deployment_id));
CREATE TABLE IF NOT EXISTS {database}.alerts AS {shard_database}.alerts ENGINE = Distributed({cluster}, {shard_database}, alerts, cityHash64(alert_id));
CREATE TABLE IF NOT EXISTS {database}.alert_deliveries AS {shard_database}.alert_deliveries ENGINE = Distributed({cluster}, {shard_database}, alert_deliveries, cityHash64(alert_id));
CREATE TABLE IF NOT EXISTS {database}.silences AS {shard_database}.silences ENGINE = Distributed({cluster}, {shard_database}, silences, cityHash64(team, silence_id));
CREATE TABLE IF NOT EXISTS {database}.cost_hourly_env AS {shard_database}.cost_hourly_env ENGINE = Distributed({cluster}, {shard_database}, cost_hourly_env, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.cost_windows_env AS {shard_database}.cost_windows_env ENGINE = Distributed({cluster}, {shard_database}, cost_windows_env, cityHash64(team, endpoint, model));
CREATE TABLE IF NOT EXISTS {database}.digests AS {shard_database}.digests ENGINE = Distributed({cluster}, {shard_database}, digests, cityHash64(team, week));
-- Columns added to the shard tables after a Distributed table was created (migrations 042, 043): a
-- Distributed table created earlier keeps its old columns, so they are added here too (no-ops
-- on a layout created after the migration).
ALTER TABLE {database}.usage_events ADD COLUMN IF NOT EXISTS cost_input_usd Float64 DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_read_usd Float64 DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_write_usd Float64 DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_output_usd Float64 DEFAULT 0;
ALTER TABLE {database}.cost_windows ADD COLUMN IF NOT EXISTS cost_input_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_read_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_write_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_output_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0;
ALTER TABLE {database}.cost_windows_env ADD COLUMN IF NOT EXISTS cost_input_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_read_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_cache_write_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0, ADD COLUMN IF NOT EXISTS cost_output_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0;
ALTER TABLE {database}.usage_events ADD COLUMN IF NOT EXISTS retry UInt8 DEFAULT 0;
ALTER TABLE {database}.cost_windows ADD COLUMN IF NOT EXISTS retries SimpleAggregateFunction(sum, UInt64) DEFAULT 0;
ALTER TABLE {database}.cost_windows_env ADD COLUMN IF NOT EXISTS retries SimpleAggregateFunction(sum, UInt64) DEFAULT 0;
ALTER TABLE {database}.alerts ADD COLUMN IF NOT EXISTS canary String DEFAULT '';
