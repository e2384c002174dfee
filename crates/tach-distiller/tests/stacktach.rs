//! StackTach's own event_definitions.yaml files, unchanged, on the real sample notifications.

use std::path::{Path, PathBuf};

use tach_distiller::{DistillStats, Distiller, Event, TraitValue};

fn shared(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(relative)
}

fn sandbox(catch_all: bool) -> Distiller {
    Distiller::from_file(
        &shared("stacktach/sandbox/event_definitions.yaml"),
        catch_all,
    )
    .unwrap()
}

fn samples() -> Vec<String> {
    std::fs::read_to_string(shared("samples/nova-notifications.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn text(event: &Event, name: &str) -> Option<String> {
    match event.trait_value(name) {
        Some(TraitValue::Text(s)) => Some(s.clone()),
        None => None,
        other => panic!("{name} is not text: {other:?}"),
    }
}

/// An exists notification shaped like Nova's, with a dotted publisher_id.
fn exists_notification() -> String {
    serde_json::json!({
        "event_type": "compute.instance.exists",
        "message_id": "m-exists",
        "timestamp": "2016-03-02 00:00:00.000000",
        "publisher_id": "compute.host-1.example.com",
        "_context_request_id": "req-9",
        "_context_project_id": "p-1",
        "_context_tenant": "ctx-tenant",
        "payload": {
            "tenant_id": "t-1",
            "instance_id": "i-1",
            "memory_mb": 512,
            "deleted_at": "",
            "image_meta": {"org.openstack__1__architecture": "x64"},
            "audit_period_beginning": "2016-03-01 00:00:00",
            "audit_period_ending": "2016-03-02 00:00:00"
        }
    })
    .to_string()
}

#[test]
fn both_stacktach_files_load_unchanged() {
    let sandbox = sandbox(false);
    assert_eq!(sandbox.definition_count(), 6);
    assert!(sandbox.warnings().is_empty(), "{:?}", sandbox.warnings());
    let winchester = Distiller::from_file(
        &shared("stacktach/winchester-etc/event_definitions.yaml"),
        false,
    )
    .unwrap();
    assert_eq!(winchester.definition_count(), 2);
    assert!(winchester.warnings().is_empty());
    // catch_all_notifications adds one match-all definition.
    assert_eq!(self::sandbox(true).definition_count(), 7);
}

#[test]
fn merge_keys_give_exists_the_instance_traits_and_audit_period() {
    let event = sandbox(false)
        .distill_bytes(exists_notification().as_bytes())
        .unwrap()
        .unwrap();
    let at = |s: &str| TraitValue::Datetime(tach_timex::parse_datetime(s).unwrap());
    // From the exists definition itself.
    assert_eq!(
        event.trait_value("audit_period_beginning"),
        Some(&at("2016-03-01 00:00:00"))
    );
    assert_eq!(
        event.trait_value("audit_period_ending"),
        Some(&at("2016-03-02 00:00:00"))
    );
    // From `<<: *instance_traits`.
    assert_eq!(text(&event, "instance_id").as_deref(), Some("i-1"));
    assert_eq!(event.trait_value("memory_mb"), Some(&TraitValue::Int(512)));
    assert_eq!(text(&event, "os_architecture").as_deref(), Some("x64"));
    assert_eq!(text(&event, "host").as_deref(), Some("host-1.example.com"));
    // The merged `service` (split plugin) and `tenant_id` override the defaults.
    assert_eq!(text(&event, "service").as_deref(), Some("compute"));
    assert_eq!(text(&event, "tenant_id").as_deref(), Some("t-1"));
    assert_eq!(text(&event, "request_id").as_deref(), Some("req-9"));
    // deleted_at is "" in Nova's payload: no trait.
    assert_eq!(event.trait_value("deleted_at"), None);
    // An instance event through the anchored definition has no audit period.
    let update =
        exists_notification().replace("compute.instance.exists", "compute.instance.update");
    let event = sandbox(false)
        .distill_bytes(update.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(event.trait_value("audit_period_beginning"), None);
    assert_eq!(text(&event, "instance_id").as_deref(), Some("i-1"));
}

#[test]
fn every_sample_distils_with_the_sandbox_file() {
    let lines = samples();
    assert_eq!(lines.len(), 757);
    let distiller = sandbox(false);
    let mut events = Vec::new();
    for line in &lines {
        if let Some(event) = distiller.distill_bytes(line.as_bytes()).unwrap() {
            events.push(event);
        }
    }
    // scheduler.run_instance (no suffix), rescue_instance and terminate_instance have no
    // definition in the sandbox file: 3 + 2 + 3 are dropped, everything else distils.
    assert_eq!(events.len(), 749);
    assert_eq!(
        distiller.stats(),
        DistillStats {
            conversion_failures: 0,
            no_match: 8,
            events_without_traits: 0
        }
    );
    let exists: Vec<&Event> = events
        .iter()
        .filter(|e| e.event_type == "compute.instance.exists")
        .collect();
    assert_eq!(exists.len(), 49);
    for event in exists {
        for name in [
            "audit_period_beginning",
            "audit_period_ending",
            "launched_at",
        ] {
            assert!(
                matches!(event.trait_value(name), Some(TraitValue::Datetime(_))),
                "{name} missing in {}",
                event.to_json()
            );
        }
        for name in [
            "instance_id",
            "tenant_id",
            "service",
            "request_id",
            "instance_type",
        ] {
            assert!(
                text(event, name).is_some(),
                "{name} missing in {}",
                event.to_json()
            );
        }
    }
    for event in &events {
        let round_trip = Event::from_flat_json(&event.to_json()).unwrap();
        assert_eq!(round_trip.to_json(), event.to_json());
    }
    // With catch_all_notifications every sample becomes an event.
    let catch_all = sandbox(true);
    let all = lines
        .iter()
        .filter(|line| catch_all.distill_bytes(line.as_bytes()).unwrap().is_some())
        .count();
    assert_eq!(all, 757);
    assert_eq!(catch_all.stats(), DistillStats::default());
}

#[test]
fn samples_with_the_winchester_file() {
    let distiller = Distiller::from_file(
        &shared("stacktach/winchester-etc/event_definitions.yaml"),
        false,
    )
    .unwrap();
    let mut by_type = std::collections::BTreeMap::<String, usize>::new();
    for line in samples() {
        if let Some(event) = distiller.distill_bytes(line.as_bytes()).unwrap() {
            *by_type.entry(event.event_type.clone()).or_default() += 1;
            assert!(event.trait_value("service").is_some());
        }
    }
    let total: usize = by_type.values().sum();
    // Only compute.instance.* notifications have a definition there: rebuild_instance (3),
    // rescue_instance (2), scheduler.run_instance* (3 + 15 + 15 + 18), snapshot_instance (1)
    // and terminate_instance (3) are dropped.
    assert_eq!(total, 757 - 60);
    assert_eq!(distiller.stats().no_match, 60);
    assert!(by_type.keys().all(|t| t.starts_with("compute.instance.")));
    assert_eq!(distiller.stats().conversion_failures, 0);
}
