-- Dead letters are deduplicated: delivery is at-least-once, so a poison message redelivered
-- (the worker died after recording it but before acking it) must not be recorded twice. A
-- message is identified by `digest`, a 64-bit FNV-1a hash of its source and raw bytes
-- (crate::doc::dead_letter_digest), under a unique index; a message received again increments
-- `occurrences` and moves `last_received_at` (`received_at` stays the first receipt). `digest`
-- is NULL only for a message whose digest collides with a different message's (several NULLs
-- are allowed by the unique index). `tach db migrate` computes the digest of the existing rows
-- in Rust and merges rows holding the same message.
ALTER TABLE dead_letters ADD COLUMN digest BIGINT NULL;
ALTER TABLE dead_letters ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN last_received_at BIGINT NOT NULL DEFAULT 0;
UPDATE dead_letters SET last_received_at = received_at;
CREATE UNIQUE INDEX ux_dead_letters_digest ON dead_letters (digest);
