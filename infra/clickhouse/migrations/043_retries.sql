-- Retries beside errors (issue 11, build item 4): the aggregator marks an event as a retry when
-- its attributes carry `http.request.resend_count` (OpenTelemetry HTTP semantic conventions: the
-- ordinal number of the resend attempt) or Burnwatch's `retry_attempt`, as an integer >= 1; the
-- one-minute windows count them. Additive: columns are added, never dropped; rows written before
-- this migration read 0. The usage-event contract is unchanged (no new field: an attribute).
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS retry UInt8 DEFAULT 0 COMMENT '1 when the call is a resend: attributes http.request.resend_count or retry_attempt is an integer >= 1';

ALTER TABLE cost_windows ADD COLUMN IF NOT EXISTS retries SimpleAggregateFunction(sum, UInt64) DEFAULT 0 COMMENT 'calls that were retries (usage_events.retry)';
ALTER TABLE cost_windows_env ADD COLUMN IF NOT EXISTS retries SimpleAggregateFunction(sum, UInt64) DEFAULT 0 COMMENT 'calls that were retries (usage_events.retry)';

-- The views that fill the windows (migrations 002, 041 and 042) count the retries too. MODIFY
-- QUERY replaces a view's SELECT in place (no window in which inserts would miss the view) and is
-- idempotent: every migration file runs at each start. The SELECTs are 042's plus `retries`.
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
    sum(usage_events.cost_output_usd) AS cost_output_usd,
    countIf(usage_events.retry != 0) AS retries
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
    sum(usage_events.cost_output_usd) AS cost_output_usd,
    countIf(usage_events.retry != 0) AS retries
FROM usage_events
GROUP BY team, environment, endpoint, model, window_start;
