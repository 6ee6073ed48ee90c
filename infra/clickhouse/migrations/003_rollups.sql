-- Hourly and daily rollups per series, by materialized views on usage_events.
CREATE TABLE IF NOT EXISTS cost_hourly
(
    team              LowCardinality(String),
    endpoint          String,
    model             LowCardinality(String),
    hour              DateTime('UTC'),
    requests          SimpleAggregateFunction(sum, UInt64),
    errors            SimpleAggregateFunction(sum, UInt64),
    input_tokens      SimpleAggregateFunction(sum, UInt64),
    output_tokens     SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd          SimpleAggregateFunction(sum, Decimal(38, 12)),
    unpriced_requests SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (team, endpoint, model, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_hourly_mv TO cost_hourly AS
SELECT team, endpoint, model, toStartOfHour(timestamp) AS hour,
       count() AS requests, countIf(status = 'error') AS errors,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cache_read_tokens) AS cache_read_tokens, sum(cost_usd) AS cost_usd,
       countIf(unpriced) AS unpriced_requests
FROM usage_events
GROUP BY team, endpoint, model, hour;

CREATE TABLE IF NOT EXISTS cost_daily
(
    team              LowCardinality(String),
    endpoint          String,
    model             LowCardinality(String),
    day               Date,
    requests          SimpleAggregateFunction(sum, UInt64),
    errors            SimpleAggregateFunction(sum, UInt64),
    input_tokens      SimpleAggregateFunction(sum, UInt64),
    output_tokens     SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd          SimpleAggregateFunction(sum, Decimal(38, 12)),
    unpriced_requests SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (team, endpoint, model, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_daily_mv TO cost_daily AS
SELECT team, endpoint, model, toDate(timestamp) AS day,
       count() AS requests, countIf(status = 'error') AS errors,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cache_read_tokens) AS cache_read_tokens, sum(cost_usd) AS cost_usd,
       countIf(unpriced) AS unpriced_requests
FROM usage_events
GROUP BY team, endpoint, model, day;
