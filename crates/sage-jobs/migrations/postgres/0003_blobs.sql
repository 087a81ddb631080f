-- Content-addressed input blobs (PUT /v1/blobs/{sha256}): kept in the store, not in one
-- coordinator's data_dir, so whichever coordinator leads can serve a job's inputs to its worker.
-- 0001 created a metadata-only `blobs` table that nothing ever wrote (the bytes were files in
-- data_dir/blobs); it is replaced by one holding the bytes.
DROP TABLE blobs;
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
