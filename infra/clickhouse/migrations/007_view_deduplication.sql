-- A retried INSERT into usage_events (same insert_deduplication_token) is dropped by usage_events
-- (migration 001). Its materialized views must drop it too, or the rollups count the batch twice:
-- the aggregator's INSERT sets deduplicate_blocks_in_dependent_materialized_views = 1, and each
-- view's table keeps the same deduplication window as usage_events. Direct inserts into these
-- tables that must never be dropped (the repairs of reconcile.ts) set insert_deduplicate = 0.
ALTER TABLE usage_offsets MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE cost_windows MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE cost_hourly MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE cost_daily MODIFY SETTING non_replicated_deduplication_window = 1000;
