-- Raw usage events, one row per accepted model call (deduplicated by event_id in the aggregator).
-- kafka_topic/kafka_partition/kafka_offset are the exactly-once checkpoint: the aggregator resumes
-- each partition after the highest offset stored here (see services/aggregator/sink.ts).
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id           String,
    timestamp          DateTime64(3, 'UTC'),
    team               LowCardinality(String),
    endpoint           String,
    model              LowCardinality(String),
    provider           LowCardinality(String),
    service            LowCardinality(String),
    deployment_id      String,
    input_tokens       UInt64,
    output_tokens      UInt64,
    cache_read_tokens  UInt64,
    cache_write_tokens UInt64,
    batch              Bool,
    cost_usd           Decimal(38, 12),
    cost_source        LowCardinality(String) COMMENT 'reported | catalog | override | gpu | unpriced',
    unpriced           Bool,
    gpu_seconds        Float64,
    latency_ms         Float64,
    status             LowCardinality(String),
    attributes         Map(String, String),
    late               Bool COMMENT 'arrived after its window had closed in the stream',
    kafka_topic        LowCardinality(String),
    kafka_partition    UInt32,
    kafka_offset       UInt64,
    ingested_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team, endpoint, model, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Highest stored offset per topic partition, maintained in the same INSERT as usage_events.
CREATE TABLE IF NOT EXISTS usage_offsets
(
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    max_offset      SimpleAggregateFunction(max, UInt64),
    max_timestamp   SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (kafka_topic, kafka_partition);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_offsets_mv TO usage_offsets AS
SELECT kafka_topic, kafka_partition, max(kafka_offset) AS max_offset, max(timestamp) AS max_timestamp
FROM usage_events
GROUP BY kafka_topic, kafka_partition;
