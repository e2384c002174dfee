//! Dead letters: poison messages kept with the reason they were rejected, in the
//! `dead_letters` table (created by migration 1; migration 5 added the digest that makes a
//! redelivered message one row with a count of `occurrences`). Recording and
//! listing the newest are [`Store::insert_dead_letter`] and [`Store::list_dead_letters`]; this
//! module adds counting and reading them oldest first, page by page.

use sqlx::Row;

use crate::error::{Context, Result};
use crate::rows::{DEAD_LETTER_COLS, decode_dead_letter};
use crate::sql::{query, sql};
use crate::store::{DeadLetter, Store, sql_owned};

impl Store {
    /// How many dead letters are stored.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn count_dead_letters(&self) -> Result<u64> {
        let n: i64 = query(sql(self.dialect(), "SELECT COUNT(*) FROM dead_letters"))
            .fetch_one(self.pool_ref())
            .await
            .and_then(|row| row.try_get(0))
            .ctx("counting dead letters")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` dead letters with an id above `after_id`, oldest first (page with the last
    /// id returned; start from 0).
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn dead_letters_after(&self, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
        let select =
            format!("SELECT {DEAD_LETTER_COLS} FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?");
        let rows = query(sql_owned(self.dialect(), &select))
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool_ref())
            .await
            .ctx("reading dead letters")?;
        rows.iter().map(decode_dead_letter).collect()
    }
}
