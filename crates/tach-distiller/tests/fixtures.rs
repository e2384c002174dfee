//! Runs every case under `tests/fixtures/<case>/`: `definitions.yaml` is loaded,
//! `notification.json` distilled, and the result compared with `expected.json` (the flat
//! JSON event, or `null` when the notification is dropped). An optional `options.json` may
//! set `catch_all` and the expected `stats` counters (absent counters must stay 0).

use std::fs;
use std::path::{Path, PathBuf};

use tach_distiller::{DistillStats, Distiller, Event};

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn run_case(dir: &Path) -> Result<(), String> {
    let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let options: serde_json::Value = match read("options.json") {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("options.json: {e}"))?,
        Err(_) => serde_json::json!({}),
    };
    let catch_all = options["catch_all"].as_bool().unwrap_or(false);
    let definitions = dir.join("definitions.yaml");
    let distiller = Distiller::from_file(&definitions, catch_all).map_err(|e| e.to_string())?;
    let notification = read("notification.json")?;
    let expected: serde_json::Value =
        serde_json::from_str(&read("expected.json")?).map_err(|e| format!("expected.json: {e}"))?;
    let event = distiller
        .distill_bytes(notification.as_bytes())
        .map_err(|e| format!("poison: {e}"))?;
    let actual: serde_json::Value = match &event {
        Some(event) => {
            serde_json::from_str(&event.to_json()).map_err(|e| format!("to_json: {e}"))?
        }
        None => serde_json::Value::Null,
    };
    if actual != expected {
        return Err(format!(
            "expected {}\n   found {}",
            serde_json::to_string_pretty(&expected).unwrap_or_default(),
            serde_json::to_string_pretty(&actual).unwrap_or_default()
        ));
    }
    if let Some(event) = &event {
        let names: Vec<&str> = event.traits.iter().map(|t| t.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if names != sorted {
            return Err(format!("traits not sorted and unique: {names:?}"));
        }
        let round_trip = Event::from_flat_json(&event.to_json()).map_err(|e| e.to_string())?;
        if round_trip.to_json() != event.to_json() {
            return Err(format!("flat JSON does not round-trip: {round_trip:?}"));
        }
    }
    let stats = &options["stats"];
    let want = DistillStats {
        conversion_failures: stats["conversion_failures"].as_u64().unwrap_or(0),
        no_match: stats["no_match"].as_u64().unwrap_or(0),
        events_without_traits: stats["events_without_traits"].as_u64().unwrap_or(0),
    };
    if distiller.stats() != want {
        return Err(format!(
            "stats: expected {want:?}, found {:?}",
            distiller.stats()
        ));
    }
    Ok(())
}

#[test]
fn every_fixture_case_distils_as_expected() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 20, "fixtures missing: {dirs:?}");
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case(dir).err().map(|e| {
                format!(
                    "{}: {e}",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
