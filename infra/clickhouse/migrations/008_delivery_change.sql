-- One delivery per alert state change. An alert can get materially worse more than once: each
-- `updated` record is its own change, told apart by `change` (its detected_at, ms since epoch);
-- '' for firing and resolved, of which an alert has one each. In the sorting key, so that
-- ReplacingMergeTree never merges two updates of one alert into one row. (No DEFAULT
-- expression: ClickHouse refuses one on a column added to the sorting key; a String's
-- implicit default is ''.)
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS change String COMMENT 'which updated: its detected_at in ms; empty for firing and resolved' AFTER status, MODIFY ORDER BY (alert_id, status, change);
