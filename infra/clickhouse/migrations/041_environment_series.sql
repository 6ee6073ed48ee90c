-- Environment as part of the series identity (issue 15). cost_windows keeps its ORDER BY
-- (team, endpoint, model, window_start) and its analyst queries, with every environment summed;
-- cost_windows_env is the same one-minute rollup with the environment in its key, so a series of
-- staging never mixes into production's. The detector rebuilds its baselines from this table.
CREATE TABLE IF NOT EXISTS cost_windows_env
(
    team               LowCardinality(String),
    environment        LowCardinality(String),
    endpoint           String,
    model              LowCardinality(String),
    window_start       DateTime('UTC'),
    requests           SimpleAggregateFunction(sum, UInt64),
    errors             SimpleAggregateFunction(sum, UInt64),
    input_tokens       SimpleAggregateFunction(sum, UInt64),
    output_tokens      SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens  SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens   SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 12)),
    cost_sq_sum        SimpleAggregateFunction(sum, Float64),
    unpriced_requests  SimpleAggregateFunction(sum, UInt64),
    late_events        SimpleAggregateFunction(sum, UInt64),
    deployments        SimpleAggregateFunction(sumMap, Map(String, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (team, environment, endpoint, model, window_start)
SETTINGS non_replicated_deduplication_window = 1000;

-- Rows stored before this table existed: copied once, while the table is still empty. The
-- columns are named: the table gains columns later (migration 042) and this runs at every start.
INSERT INTO cost_windows_env (team, environment, endpoint, model, window_start, requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                              reasoning_tokens, cost_usd, cost_sq_sum, unpriced_requests, late_events, deployments) SETTINGS insert_deduplicate = 0
SELECT team, environment, endpoint, model, toStartOfMinute(timestamp) AS window_start,
       count(), countIf(status = 'error'), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       sum(reasoning_tokens), sum(cost_usd), sum(toFloat64(usage_events.cost_usd) * toFloat64(usage_events.cost_usd)),
       countIf(unpriced), countIf(late),
       sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1))))
FROM usage_events
WHERE (SELECT count() FROM cost_windows_env) = 0
GROUP BY team, environment, endpoint, model, window_start;

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_windows_env_mv TO cost_windows_env AS
SELECT
    team, environment, endpoint, model,
    toStartOfMinute(timestamp) AS window_start,
    count() AS requests,
    countIf(status = 'error') AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(toFloat64(usage_events.cost_usd) * toFloat64(usage_events.cost_usd)) AS cost_sq_sum,
    countIf(unpriced) AS unpriced_requests,
    countIf(late) AS late_events,
    sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1)))) AS deployments
FROM usage_events
GROUP BY team, environment, endpoint, model, window_start;

-- The environment of an alert ('production' for rows written before this migration).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS environment LowCardinality(String) DEFAULT 'production';
