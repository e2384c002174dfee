-- Events, their traits and the dead-letter table. Datetimes are BIGINT µs since the epoch.
-- utf8mb4_bin: full Unicode, and case-sensitive comparisons like the other backends.
-- LONGTEXT: text traits are never truncated (TEXT holds only 64 kB).
CREATE TABLE events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id VARCHAR(255) NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    generated BIGINT NOT NULL,
    UNIQUE KEY ux_events_message_id (message_id),
    KEY ix_events_generated_id (generated, id),
    KEY ix_events_type_generated (event_type, generated)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE traits (
    event_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    type SMALLINT NOT NULL,
    t_string LONGTEXT NULL,
    t_int BIGINT NULL,
    t_float DOUBLE NULL,
    t_datetime BIGINT NULL,
    PRIMARY KEY (event_id, name),
    KEY ix_traits_name_string (name, t_string(191)),
    KEY ix_traits_name_int (name, t_int),
    KEY ix_traits_name_datetime (name, t_datetime),
    CONSTRAINT fk_traits_event FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE dead_letters (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    source VARCHAR(255) NOT NULL,
    reason LONGTEXT NOT NULL,
    raw LONGBLOB NOT NULL,
    KEY ix_dead_letters_received_at (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
