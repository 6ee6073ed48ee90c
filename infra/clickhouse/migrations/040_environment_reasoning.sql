-- Environment as a dimension and reasoning tokens as their own column (issue 15). Additive:
-- columns are added, never dropped; rows written before this migration read 'production' and 0.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS environment LowCardinality(String) DEFAULT 'production' COMMENT 'production, staging, dev, …; OTLP deployment.environment.name';
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS reasoning_tokens UInt64 DEFAULT 0 COMMENT 'part of output_tokens spent on reasoning (gen_ai.usage.reasoning.output_tokens)';

-- The hourly rollup with environment and provider in its key. cost_hourly keeps its ORDER BY
-- (team, endpoint, model, hour) and its analyst queries; a key cannot gain a column in place, so
-- this is a new table beside it. Reports, digests and budgets per environment read this one.
CREATE TABLE IF NOT EXISTS cost_hourly_env
(
    team               LowCardinality(String),
    environment        LowCardinality(String),
    endpoint           String,
    model              LowCardinality(String),
    provider           LowCardinality(String),
    hour               DateTime('UTC'),
    requests           SimpleAggregateFunction(sum, UInt64),
    errors             SimpleAggregateFunction(sum, UInt64),
    input_tokens       SimpleAggregateFunction(sum, UInt64),
    output_tokens      SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens  SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens   SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 12)),
    unpriced_requests  SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (team, environment, endpoint, model, provider, hour)
SETTINGS non_replicated_deduplication_window = 1000;

-- Rows stored before this table existed: copied once, while the table is still empty (every
-- migration file runs at each start; once the table has rows this inserts nothing).
INSERT INTO cost_hourly_env SETTINGS insert_deduplicate = 0
SELECT team, environment, endpoint, model, provider, toStartOfHour(timestamp) AS hour,
       count(), countIf(status = 'error'), sum(input_tokens), sum(output_tokens),
       sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd), countIf(unpriced)
FROM usage_events
WHERE (SELECT count() FROM cost_hourly_env) = 0
GROUP BY team, environment, endpoint, model, provider, hour;

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_hourly_env_mv TO cost_hourly_env AS
SELECT team, environment, endpoint, model, provider, toStartOfHour(timestamp) AS hour,
       count() AS requests, countIf(status = 'error') AS errors,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
       sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd,
       countIf(unpriced) AS unpriced_requests
FROM usage_events
GROUP BY team, environment, endpoint, model, provider, hour;

-- Weekly digests sent, one row per team and ISO week (of the team's time zone): checked before
-- a send so each team gets each week's digest once. `claimed` is written before the Slack call
-- and `sent` after it; ReplacingMergeTree(recorded_at) keeps the latest per (team, week).
CREATE TABLE IF NOT EXISTS digests
(
    team        LowCardinality(String),
    week        String COMMENT 'ISO week, e.g. 2026-W48',
    status      LowCardinality(String) COMMENT 'claimed | sent | failed',
    channel     String,
    message_ts  String,
    total_usd   Decimal(38, 12),
    claim_id    String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (team, week);
