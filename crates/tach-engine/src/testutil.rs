//! Helpers shared by the unit tests: datetimes, events, scratch directories.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use tach_distiller::{Event, Trait, TraitValue};

/// A datetime from OpenStack or ISO text.
pub(crate) fn dt(text: &str) -> DateTime<Utc> {
    tach_timex::parse_datetime(text).unwrap_or_else(|| panic!("test datetime `{text}`"))
}

/// A text trait value.
pub(crate) fn text(s: &str) -> TraitValue {
    TraitValue::Text(s.to_string())
}

/// A datetime trait value.
pub(crate) fn date(s: &str) -> TraitValue {
    TraitValue::Datetime(dt(s))
}

/// An event with traits (sorted by name, as the distiller makes them).
pub(crate) fn event(
    id: &str,
    event_type: &str,
    timestamp: &str,
    traits: &[(&str, TraitValue)],
) -> Event {
    let mut traits: Vec<Trait> = traits
        .iter()
        .map(|(name, value)| Trait {
            name: (*name).to_string(),
            value: value.clone(),
        })
        .collect();
    traits.sort_by(|a, b| a.name.cmp(&b.name));
    Event {
        message_id: id.to_string(),
        event_type: event_type.to_string(),
        timestamp: dt(timestamp),
        traits,
    }
}

/// A fresh empty directory under the system temp dir.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tach-engine-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// StackTach's shipped configuration files (`/work/shared/stacktach` beside the repository).
pub(crate) fn stacktach_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stacktach")
}

/// The repository's `config/` directory.
pub(crate) fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}
