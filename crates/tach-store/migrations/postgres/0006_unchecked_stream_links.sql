-- Stream links and distinguishing traits lose their foreign keys. PostgreSQL checks a foreign
-- key with a row lock on the referenced row for every inserted row (two per link), which took
-- a third of the store's time in ingest (BENCHMARKS.md). Only tach writes these tables: a link
-- or a distinguishing trait is inserted in the transaction that locked or created its stream,
-- and tach deletes them itself, with the stream (Store::delete_streams) or the event
-- (Store::trim_events), as ON DELETE CASCADE did.
ALTER TABLE stream_events DROP CONSTRAINT IF EXISTS stream_events_stream_id_fkey,
    DROP CONSTRAINT IF EXISTS stream_events_event_id_fkey;
ALTER TABLE dist_traits DROP CONSTRAINT IF EXISTS dist_traits_stream_id_fkey;
