-- Deployment markers (HTTP POST /v1/deployments or topic `deployments`).
CREATE TABLE IF NOT EXISTS deployments
(
    deployment_id String,
    team          LowCardinality(String),
    service       LowCardinality(String),
    timestamp     DateTime64(3, 'UTC'),
    endpoint      Nullable(String),
    version       Nullable(String),
    commit        Nullable(String),
    url           Nullable(String),
    received_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY (team, service, deployment_id);

-- One row per alert state change (the alert record of DESIGN.md). (alert_id, status) is unique.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id           String,
    status             LowCardinality(String),
    team               LowCardinality(String),
    endpoint           Nullable(String),
    model              Nullable(String),
    signal             LowCardinality(String),
    direction          LowCardinality(String),
    baseline           Float64,
    current            Float64,
    change_pct         Float64,
    started_at         DateTime64(3, 'UTC'),
    detected_at        DateTime64(3, 'UTC'),
    deployment_ids     Array(String),
    drivers            String COMMENT 'JSON object: contributions in percentage points',
    severity           LowCardinality(String),
    monthly_impact_usd Float64,
    recorded_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (alert_id, status);

-- One row per delivery attempt outcome of an alert state change to Slack (or the console).
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id     String,
    status       LowCardinality(String),
    team         LowCardinality(String),
    channel      String,
    message_ts   String COMMENT 'Slack ts of the message posted or updated',
    thread_ts    String COMMENT 'Slack ts of the parent page (the thread)',
    outcome      LowCardinality(String) COMMENT 'delivered | silenced | failed',
    error        String,
    attempts     UInt32,
    delivered_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(delivered_at)
ORDER BY (alert_id, status);
