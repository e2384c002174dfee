-- A trait row holds one typed value, so each row now enters only the index of its own type:
-- two B-trees written per trait instead of four. Lookups (`name = ? AND t_int = ?` and so on)
-- imply `IS NOT NULL` and keep using these indexes.
DROP INDEX ix_traits_name_string;
DROP INDEX ix_traits_name_int;
DROP INDEX ix_traits_name_datetime;
CREATE INDEX ix_traits_name_string ON traits (name, t_string) WHERE t_string IS NOT NULL;
CREATE INDEX ix_traits_name_int ON traits (name, t_int) WHERE t_int IS NOT NULL;
CREATE INDEX ix_traits_name_datetime ON traits (name, t_datetime) WHERE t_datetime IS NOT NULL;
