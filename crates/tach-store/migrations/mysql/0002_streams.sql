-- Streams, their events and their distinguishing traits.
-- active_key is set while a stream is open for new events and NULL afterwards; its uniqueness
-- guarantees one open stream per trigger and distinguishing values (NULLs may repeat).
CREATE TABLE streams (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    trigger_name VARCHAR(255) NOT NULL,
    state SMALLINT NOT NULL,
    first_event BIGINT NOT NULL,
    last_event BIGINT NOT NULL,
    expire_timestamp BIGINT NOT NULL,
    fire_timestamp BIGINT NULL,
    distinguishing_key LONGTEXT NOT NULL,
    active_key VARCHAR(64) NULL,
    fire_state LONGTEXT NOT NULL,
    error LONGTEXT NULL,
    event_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY ux_streams_active_key (active_key),
    KEY ix_streams_trigger_state (trigger_name, state),
    KEY ix_streams_state_fire (state, fire_timestamp),
    KEY ix_streams_state_expire (state, expire_timestamp),
    KEY ix_streams_first_event (first_event),
    KEY ix_streams_last_event (last_event)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE stream_events (
    stream_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (stream_id, event_id),
    KEY ix_stream_events_event (event_id),
    CONSTRAINT fk_stream_events_stream FOREIGN KEY (stream_id) REFERENCES streams (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_stream_events_event FOREIGN KEY (event_id) REFERENCES events (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE dist_traits (
    stream_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    type SMALLINT NOT NULL,
    t_string LONGTEXT NULL,
    t_int BIGINT NULL,
    t_float DOUBLE NULL,
    t_datetime BIGINT NULL,
    t_end BIGINT NULL,
    PRIMARY KEY (stream_id, name),
    KEY ix_dist_traits_name_string (name, t_string(191)),
    KEY ix_dist_traits_name_int (name, t_int),
    KEY ix_dist_traits_name_datetime (name, t_datetime),
    CONSTRAINT fk_dist_traits_stream FOREIGN KEY (stream_id) REFERENCES streams (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
