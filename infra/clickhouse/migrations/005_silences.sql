-- Silences (`burnwatch silence`): alerts of a team (optionally one endpoint and/or model) are
-- recorded in alert_deliveries with outcome 'silenced' instead of paging, until `until`.
-- endpoint/model NULL = any. Rows are never updated; a new silence gets a new silence_id.
CREATE TABLE IF NOT EXISTS silences
(
    silence_id String,
    team       LowCardinality(String),
    endpoint   Nullable(String),
    model      Nullable(String),
    until      DateTime64(3, 'UTC'),
    reason     String,
    created_by String DEFAULT '',
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (team, silence_id);

-- The notifier's extra delivery facts (columns only grow). outcome may also be 'sending': the
-- intent recorded just before a Slack call, replaced by delivered|failed once Slack answered
-- (latest delivered_at wins per (alert_id, status)); a 'sending' left behind means the
-- notifier stopped mid-call, and the next run checks Slack before posting again.
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS alert_json String DEFAULT '' COMMENT 'the alert record delivered (JSON), to re-render the page after a restart';
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS group_key String DEFAULT '' COMMENT 'team + first deployment ID: series of one team breaking with the same deployment share one page';
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS channel_name String DEFAULT '' COMMENT 'the channel as configured (#name); channel holds the Slack channel ID';
