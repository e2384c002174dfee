//! The worker in process on a files source into SQLite: events stored, unknown event types
//! dropped, poison lines in the dead-letter table, and the run ends at the end of the files.

use std::path::Path;

use chrono::{TimeZone, Utc};
use tach_distiller::Distiller;
use tach_engine::WinchesterConfig;
use tach_ingest::{Ingest, IngestConfig};
use tach_notigen::{Envelope, Generator, NotigenConfig};
use tach_store::Store;
use tach_worker::WorkerSetup;

#[tokio::test]
async fn a_files_source_is_stored_with_its_poison_in_the_dead_letter_table() {
    let dir = std::env::temp_dir().join(format!("tach_ingest_files_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut text = String::new();
    let generator = Generator::new(NotigenConfig {
        seed: 3,
        start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap(),
        count: Some(1200),
        ..NotigenConfig::default()
    });
    for (i, n) in generator.enumerate() {
        n.write_json(Envelope::Oslo, &mut text);
        text.push('\n');
        if i == 100 {
            text.push_str("{not json\n[\"an\", \"array\"]\n\n");
        }
    }
    // An event type no definition matches: dropped, not poison.
    text.push_str(r#"{"event_type": "no.such.type", "message_id": "m-1"}"#);
    text.push('\n');
    std::fs::write(dir.join("in.jsonl"), &text).unwrap();
    let db = dir.join("t.db");
    std::fs::write(
        dir.join("winchester.yaml"),
        format!(
            "config_path: [\"{}\"]\ndatabase:\n  url: sqlite://{}\n\
             distiller_config: event_definitions.yaml\ntrigger_definitions: triggers.yaml\n\
             pipeline_config: pipelines.yaml\npipeline_handlers:\n  logger: logger\n  usage: usage\n\
             ingest:\n  sources:\n    - type: files\n      paths: [\"{}\"]\n  batch:\n    max_messages: 250\n",
            config_dir.display(),
            db.display(),
            dir.join("in.jsonl").display()
        ),
    )
    .unwrap();
    let config = WinchesterConfig::load(dir.join("winchester.yaml")).unwrap();
    let ingest = IngestConfig::from_section(config.sections.get("ingest")).unwrap();
    let distiller = Distiller::from_file(&config.distiller_config_path().unwrap(), false).unwrap();
    let expected = text
        .lines()
        .filter_map(|l| distiller.distill_bytes(l.as_bytes()).ok().flatten())
        .count() as u64;
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let setup = WorkerSetup::load(&config).unwrap();
    let worker = Ingest::new(
        ingest,
        distiller,
        setup.trigger_manager(store.clone()),
        config.statistics_period,
    );
    let totals = worker.run(std::future::pending()).await.unwrap();
    assert_eq!(totals.received, 1200 + 2 + 1);
    assert_eq!(totals.stored, expected);
    assert_eq!(totals.poison, 2);
    assert_eq!(totals.dropped, 1);
    assert_eq!(
        totals.stored + totals.poison + totals.dropped,
        totals.received
    );
    assert_eq!(store.count_dead_letters().await.unwrap(), 2);
    let letters = store.dead_letters_after(0, 10).await.unwrap();
    assert_eq!(letters[0].raw, b"{not json");
    assert!(
        letters[0].reason.contains("not valid JSON"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[1].reason, "not a JSON object");
    assert!(letters[1].source.starts_with("file:"));
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
