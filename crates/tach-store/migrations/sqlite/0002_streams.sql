-- Streams, their events and their distinguishing traits.
-- active_key is set while a stream is open for new events and NULL afterwards; its uniqueness
-- guarantees one open stream per trigger and distinguishing values.
CREATE TABLE streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_name VARCHAR(255) NOT NULL,
    state SMALLINT NOT NULL,
    first_event BIGINT NOT NULL,
    last_event BIGINT NOT NULL,
    expire_timestamp BIGINT NOT NULL,
    fire_timestamp BIGINT NULL,
    distinguishing_key TEXT NOT NULL,
    active_key VARCHAR(64) NULL UNIQUE,
    fire_state TEXT NOT NULL,
    error TEXT NULL,
    event_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX ix_streams_trigger_state ON streams (trigger_name, state);
CREATE INDEX ix_streams_state_fire ON streams (state, fire_timestamp);
CREATE INDEX ix_streams_state_expire ON streams (state, expire_timestamp);
CREATE INDEX ix_streams_first_event ON streams (first_event);
CREATE INDEX ix_streams_last_event ON streams (last_event);
CREATE TABLE stream_events (
    stream_id BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (stream_id, event_id)
) WITHOUT ROWID;
CREATE INDEX ix_stream_events_event ON stream_events (event_id);
CREATE TABLE dist_traits (
    stream_id BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    type SMALLINT NOT NULL,
    t_string TEXT NULL,
    t_int BIGINT NULL,
    t_float DOUBLE PRECISION NULL,
    t_datetime BIGINT NULL,
    t_end BIGINT NULL,
    PRIMARY KEY (stream_id, name)
) WITHOUT ROWID;
CREATE INDEX ix_dist_traits_name_string ON dist_traits (name, t_string);
CREATE INDEX ix_dist_traits_name_int ON dist_traits (name, t_int);
CREATE INDEX ix_dist_traits_name_datetime ON dist_traits (name, t_datetime);
