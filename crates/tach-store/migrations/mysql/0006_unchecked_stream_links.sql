-- Stream links and distinguishing traits lose their foreign keys. InnoDB checks a foreign key
-- with a shared lock on the referenced row for every inserted row (two per link); in ingest
-- that was a sixth of the store's time (BENCHMARKS.md). Only tach writes these tables: a link
-- or a distinguishing trait is inserted in the transaction that locked or created its stream,
-- and tach deletes them itself, with the stream (Store::delete_streams) or the event
-- (Store::trim_events), as ON DELETE CASCADE did. The indexes stay.
ALTER TABLE stream_events DROP FOREIGN KEY fk_stream_events_stream,
    DROP FOREIGN KEY fk_stream_events_event;
ALTER TABLE dist_traits DROP FOREIGN KEY fk_dist_traits_stream;
