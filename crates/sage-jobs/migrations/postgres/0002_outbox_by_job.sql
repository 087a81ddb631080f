-- The scheduler reads each queued job's outbox entries on every pass (`outbox_for`): without
-- this index each read scanned the whole outbox, which grows with every job ever run (found by
-- cargo xtask load at 10,000 jobs: throughput fell from 2.1 to 0.7 jobs/s as the table grew).
CREATE INDEX outbox_by_job ON outbox (job_id, created_ms);
