-- New trait index rows go to this small table first and are moved into trait_index in bulk,
-- in key order (crates/tach-store/src/recent.rs): trait_index keys are hashes, so inserting
-- each batch's rows straight into the big tree rewrote most of its pages on every commit.
-- Lookups read both tables. Rows already in trait_index stay there.
CREATE TABLE trait_index_recent (
    k BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (k, event_id)
) WITHOUT ROWID;
