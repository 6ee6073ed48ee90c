-- The cost of each token component (issue 11, "Exact drivers"): the aggregator prices every event
-- and stores its cost_usd split into uncached input, cache reads, cache writes and output
-- (reasoning included); the one-minute windows sum them, so the detector splits a change of cost
-- per request exactly instead of estimating it. Additive: columns are added, never dropped; rows
-- written before this migration read 0 (the detector then falls back to catalog rates).
-- Float64, like cost_sq_sum: the parts of a token-priced event add up to its cost_usd to ~1e-12 USD.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cost_input_usd Float64 DEFAULT 0 COMMENT 'part of cost_usd for uncached input tokens';
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cost_cache_read_usd Float64 DEFAULT 0 COMMENT 'part of cost_usd for cache-read tokens';
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cost_cache_write_usd Float64 DEFAULT 0 COMMENT 'part of cost_usd for cache-write tokens';
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cost_output_usd Float64 DEFAULT 0 COMMENT 'part of cost_usd for output tokens, reasoning included';

ALTER TABLE cost_windows ADD COLUMN IF NOT EXISTS cost_input_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for uncached input tokens';
ALTER TABLE cost_windows ADD COLUMN IF NOT EXISTS cost_cache_read_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for cache-read tokens';
ALTER TABLE cost_windows ADD COLUMN IF NOT EXISTS cost_cache_write_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for cache-write tokens';
ALTER TABLE cost_windows ADD COLUMN IF NOT EXISTS cost_output_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for output tokens, reasoning included';

ALTER TABLE cost_windows_env ADD COLUMN IF NOT EXISTS cost_input_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for uncached input tokens';
ALTER TABLE cost_windows_env ADD COLUMN IF NOT EXISTS cost_cache_read_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for cache-read tokens';
ALTER TABLE cost_windows_env ADD COLUMN IF NOT EXISTS cost_cache_write_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for cache-write tokens';
ALTER TABLE cost_windows_env ADD COLUMN IF NOT EXISTS cost_output_usd SimpleAggregateFunction(sum, Float64) DEFAULT 0 COMMENT 'part of cost_usd for output tokens, reasoning included';

-- The views that fill the windows (migrations 002 and 041) sum the new columns too. MODIFY QUERY
-- replaces a view's SELECT in place (no window in which inserts would miss the view) and is
-- idempotent: every migration file runs at each start.
ALTER TABLE cost_windows_mv MODIFY QUERY
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
    sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1)))) AS deployments,
    sum(usage_events.cost_input_usd) AS cost_input_usd,
    sum(usage_events.cost_cache_read_usd) AS cost_cache_read_usd,
    sum(usage_events.cost_cache_write_usd) AS cost_cache_write_usd,
    sum(usage_events.cost_output_usd) AS cost_output_usd
FROM usage_events
GROUP BY team, endpoint, model, window_start;

ALTER TABLE cost_windows_env_mv MODIFY QUERY
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
    sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1)))) AS deployments,
    sum(usage_events.cost_input_usd) AS cost_input_usd,
    sum(usage_events.cost_cache_read_usd) AS cost_cache_read_usd,
    sum(usage_events.cost_cache_write_usd) AS cost_cache_write_usd,
    sum(usage_events.cost_output_usd) AS cost_output_usd
FROM usage_events
GROUP BY team, environment, endpoint, model, window_start;

-- The details of a break paged by the direct canary comparison (JSON of the alert record's
-- `canary`: deployment_id, compared_with, traffic_pct, change_pct); '' for every other alert.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS canary String DEFAULT '' COMMENT 'JSON: the canary comparison that paged this break; empty otherwise';
