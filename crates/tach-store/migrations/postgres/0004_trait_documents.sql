-- Each event's traits become one JSON document on its row (crate::doc), read with the event
-- and written with one row per event instead of one per trait. Searches by trait use the narrow
-- trait_index, which covers the traits named in indexed_traits (`*`: all); `tach db migrate`
-- fills both from the old traits table and then drops it.
ALTER TABLE events ADD COLUMN traits TEXT NULL;
CREATE TABLE trait_index (
    k BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (k, event_id)
);
CREATE TABLE indexed_traits (
    name VARCHAR(255) NOT NULL PRIMARY KEY
);
INSERT INTO indexed_traits (name) VALUES ('instance_id'), ('request_id'), ('tenant_id'), ('user_id'), ('host');
