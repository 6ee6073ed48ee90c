-- Rolling metrics per series, derived from cost_windows at query time (DESIGN.md "Windows and
-- aggregates"): cost per request and burn rate (USD/hour) over the last 5 minutes and 1 hour,
-- month-to-date spend and its projection to the end of the month at the month's pace so far.
CREATE VIEW IF NOT EXISTS series_rolling AS
SELECT
    team,
    endpoint,
    model,
    sumIf(requests, window_start >= now() - INTERVAL 5 MINUTE) AS requests_5m,
    toFloat64(sumIf(cost_usd, window_start >= now() - INTERVAL 5 MINUTE)) / nullIf(sumIf(requests, window_start >= now() - INTERVAL 5 MINUTE), 0) AS cost_per_request_5m,
    toFloat64(sumIf(cost_usd, window_start >= now() - INTERVAL 5 MINUTE)) * 12 AS burn_usd_per_hour_5m,
    sumIf(requests, window_start >= now() - INTERVAL 1 HOUR) AS requests_1h,
    toFloat64(sumIf(cost_usd, window_start >= now() - INTERVAL 1 HOUR)) / nullIf(sumIf(requests, window_start >= now() - INTERVAL 1 HOUR), 0) AS cost_per_request_1h,
    toFloat64(sumIf(cost_usd, window_start >= now() - INTERVAL 1 HOUR)) AS burn_usd_per_hour_1h,
    toFloat64(sumIf(cost_usd, window_start >= toStartOfMonth(now()))) AS month_to_date_usd,
    toFloat64(sumIf(cost_usd, window_start >= toStartOfMonth(now())))
        * dateDiff('second', toStartOfMonth(now()), toStartOfMonth(now()) + INTERVAL 1 MONTH)
        / greatest(dateDiff('second', toStartOfMonth(now()), now()), 1) AS projected_month_usd
FROM cost_windows
WHERE window_start >= least(toStartOfMonth(now()), now() - INTERVAL 1 HOUR)
GROUP BY team, endpoint, model;
