-- Events, their traits and the dead-letter table. Datetimes are BIGINT µs since the epoch.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id VARCHAR(255) NOT NULL UNIQUE,
    event_type VARCHAR(255) NOT NULL,
    generated BIGINT NOT NULL
);
CREATE INDEX ix_events_generated_id ON events (generated, id);
CREATE INDEX ix_events_type_generated ON events (event_type, generated);
-- WITHOUT ROWID: traits are clustered by (event_id, name), so an event's traits are adjacent.
CREATE TABLE traits (
    event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    type SMALLINT NOT NULL,
    t_string TEXT NULL,
    t_int BIGINT NULL,
    t_float DOUBLE PRECISION NULL,
    t_datetime BIGINT NULL,
    PRIMARY KEY (event_id, name)
) WITHOUT ROWID;
CREATE INDEX ix_traits_name_string ON traits (name, t_string);
CREATE INDEX ix_traits_name_int ON traits (name, t_int);
CREATE INDEX ix_traits_name_datetime ON traits (name, t_datetime);
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at BIGINT NOT NULL,
    source VARCHAR(255) NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX ix_dead_letters_received_at ON dead_letters (received_at);
