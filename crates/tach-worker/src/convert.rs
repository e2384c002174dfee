//! Conversions between the engine's stream types and the store's plain row types.

use tach_engine::{DistValue, DistinguishingValues, FireState, StreamProgress, StreamState};
use tach_store as store;

use crate::{Error, Result};

/// The store's form of a distinguishing value.
pub fn dist_value(value: &DistValue) -> store::DistValue {
    match value {
        DistValue::Text(s) => store::DistValue::Text(s.clone()),
        DistValue::Int(i) => store::DistValue::Int(*i),
        DistValue::Float(f) => store::DistValue::Float(*f),
        DistValue::Datetime(t) => store::DistValue::Datetime(*t),
        DistValue::Range(r) => store::DistValue::Range {
            begin: r.begin,
            end: r.end,
        },
    }
}

/// The store's form of a stream's distinguishing values.
pub fn dist_traits(values: &DistinguishingValues) -> Vec<(String, store::DistValue)> {
    values
        .as_slice()
        .iter()
        .map(|(name, value)| (name.clone(), dist_value(value)))
        .collect()
}

/// The store's state for an engine state.
pub fn store_state(state: StreamState) -> store::StreamState {
    match state {
        StreamState::Active => store::StreamState::Active,
        StreamState::Firing => store::StreamState::Firing,
        StreamState::Expiring => store::StreamState::Expiring,
        StreamState::Error => store::StreamState::Error,
        StreamState::ExpireError => store::StreamState::ExpireError,
        StreamState::Completed => store::StreamState::Completed,
        StreamState::RetryFire => store::StreamState::RetryFire,
        StreamState::RetryExpire => store::StreamState::RetryExpire,
    }
}

/// The engine's state for a store state.
pub fn engine_state(state: store::StreamState) -> StreamState {
    match state {
        store::StreamState::Active => StreamState::Active,
        store::StreamState::Firing => StreamState::Firing,
        store::StreamState::Expiring => StreamState::Expiring,
        store::StreamState::Error => StreamState::Error,
        store::StreamState::ExpireError => StreamState::ExpireError,
        store::StreamState::Completed => StreamState::Completed,
        store::StreamState::RetryFire => StreamState::RetryFire,
        store::StreamState::RetryExpire => StreamState::RetryExpire,
    }
}

/// The engine's progress of a stored stream.
///
/// # Errors
/// [`Error::FireState`] when the stored fire-criteria state does not parse.
pub fn progress(row: &store::StreamRow) -> Result<StreamProgress> {
    let fire_state: FireState =
        serde_json::from_str(&row.fire_state).map_err(|source| Error::FireState {
            stream_id: row.id,
            fire_state: row.fire_state.clone(),
            source,
        })?;
    Ok(StreamProgress {
        first_event: row.first_event,
        last_event: row.last_event,
        expire_timestamp: row.expire_timestamp,
        fire_timestamp: row.fire_timestamp,
        event_count: u64::try_from(row.event_count).unwrap_or(0),
        fire_state,
    })
}

/// The fire-criteria state as stored (JSON).
pub fn fire_state_json(state: &FireState) -> String {
    // A struct of two integer vectors always serialises.
    serde_json::to_string(state).unwrap_or_else(|_| String::from("{}"))
}

/// The store update writing `progress` to stream `id`.
pub fn stream_update(id: i64, progress: &StreamProgress) -> store::StreamUpdate {
    store::StreamUpdate {
        id,
        first_event: progress.first_event,
        last_event: progress.last_event,
        expire_timestamp: progress.expire_timestamp,
        fire_timestamp: progress.fire_timestamp,
        fire_state: fire_state_json(&progress.fire_state),
        event_count: i64::try_from(progress.event_count).unwrap_or(i64::MAX),
    }
}

/// The new stream row for `progress` of `trigger` with these distinguishing values.
pub fn new_stream(
    trigger: &str,
    key: &str,
    values: &DistinguishingValues,
    progress: &StreamProgress,
) -> store::NewStream {
    store::NewStream {
        trigger_name: trigger.to_owned(),
        distinguishing_key: key.to_owned(),
        distinguishing_traits: dist_traits(values),
        first_event: progress.first_event,
        last_event: progress.last_event,
        expire_timestamp: progress.expire_timestamp,
        fire_timestamp: progress.fire_timestamp,
        fire_state: fire_state_json(&progress.fire_state),
        event_count: i64::try_from(progress.event_count).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use tach_timex::TimeRange;

    use super::*;

    fn row(fire_state: &str) -> store::StreamRow {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        store::StreamRow {
            id: 7,
            trigger_name: "t".to_owned(),
            state: store::StreamState::Active,
            first_event: t,
            last_event: t,
            expire_timestamp: t,
            fire_timestamp: None,
            distinguishing_key: "k".to_owned(),
            distinguishing_traits: Vec::new(),
            attached: true,
            fire_state: fire_state.to_owned(),
            error: None,
            event_count: 3,
            events: None,
        }
    }

    #[test]
    fn progress_round_trips_through_the_store_types() {
        let progress = progress(&row(r#"{"counts":[1,0],"needed":[1,2]}"#)).unwrap();
        assert_eq!(progress.fire_state.counts, vec![1, 0]);
        assert_eq!(progress.fire_state.needed, vec![1, 2]);
        assert_eq!(progress.event_count, 3);
        let update = stream_update(7, &progress);
        assert_eq!(update.fire_state, r#"{"counts":[1,0],"needed":[1,2]}"#);
        assert_eq!(update.event_count, 3);
    }

    #[test]
    fn an_unreadable_fire_state_names_the_stream() {
        let err = progress(&row("nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream 7 has an unreadable fire_state \"nope\""
        );
    }

    #[test]
    fn distinguishing_values_convert_with_their_types() {
        let begin = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let values = DistinguishingValues::new(vec![
            ("a".to_owned(), DistValue::Text("x".to_owned())),
            ("b".to_owned(), DistValue::Int(4)),
            ("c".to_owned(), DistValue::Range(TimeRange { begin, end })),
        ]);
        assert_eq!(
            dist_traits(&values),
            vec![
                ("a".to_owned(), store::DistValue::Text("x".to_owned())),
                ("b".to_owned(), store::DistValue::Int(4)),
                ("c".to_owned(), store::DistValue::Range { begin, end }),
            ]
        );
        for state in store::StreamState::ALL {
            assert_eq!(store_state(engine_state(state)), state);
        }
    }
}
