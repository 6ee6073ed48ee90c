-- One-minute cost windows per series (team, endpoint, model), filled from usage_events by a
-- materialized view, so they always equal the raw events exactly, late events included.
-- Rows of one window may sit in several parts until merged: always aggregate (sum) by key.
CREATE TABLE IF NOT EXISTS cost_windows
(
    team               LowCardinality(String),
    endpoint           String,
    model              LowCardinality(String),
    window_start       DateTime('UTC'),
    requests           SimpleAggregateFunction(sum, UInt64),
    errors             SimpleAggregateFunction(sum, UInt64),
    input_tokens       SimpleAggregateFunction(sum, UInt64),
    output_tokens      SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens  SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 12)),
    cost_sq_sum        SimpleAggregateFunction(sum, Float64),
    unpriced_requests  SimpleAggregateFunction(sum, UInt64),
    late_events        SimpleAggregateFunction(sum, UInt64),
    deployments        SimpleAggregateFunction(sumMap, Map(String, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (team, endpoint, model, window_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_windows_mv TO cost_windows AS
SELECT
    team, endpoint, model,
    toStartOfMinute(timestamp) AS window_start,
    count() AS requests,
    countIf(status = 'error') AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(cost_usd) AS cost_usd,
    sum(toFloat64(usage_events.cost_usd) * toFloat64(usage_events.cost_usd)) AS cost_sq_sum,
    countIf(unpriced) AS unpriced_requests,
    countIf(late) AS late_events,
    sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1)))) AS deployments
FROM usage_events
GROUP BY team, endpoint, model, window_start;
