//! Behaviour of the generator through its public API: determinism, ordering, the event types
//! and request sequences Nova emits, the midnight usage audit, limits and envelopes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use tach_notigen::{EVENT_TYPES, Envelope, Generator, Notification, NotigenConfig};
use uuid::Uuid;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn run(cfg: NotigenConfig) -> Vec<Notification> {
    Generator::new(cfg).collect()
}

/// Two simulated days at the default rate, shared by the tests that need the full mix.
fn two_days_default() -> &'static [Notification] {
    static RUN: OnceLock<Vec<Notification>> = OnceLock::new();
    RUN.get_or_init(|| {
        run(NotigenConfig {
            duration: Some(Duration::days(2)),
            ..NotigenConfig::default()
        })
    })
}

/// Two simulated days at 60 operations an hour (720 instances), cheap enough to parse whole.
fn two_days_slow() -> &'static [(Notification, Value)] {
    static RUN: OnceLock<Vec<(Notification, Value)>> = OnceLock::new();
    RUN.get_or_init(|| {
        let cfg = NotigenConfig {
            seed: 11,
            operations_per_hour: 60.0,
            duration: Some(Duration::days(2)),
            ..NotigenConfig::default()
        };
        Generator::new(cfg)
            .map(|n| {
                let v = n.to_value();
                (n, v)
            })
            .collect()
    })
}

fn serialise(notifications: impl Iterator<Item = Notification>, envelope: Envelope) -> String {
    let mut out = String::new();
    for n in notifications {
        n.write_json(envelope, &mut out);
        out.push('\n');
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn is_openstack_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 26
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
        && DateTime::parse_from_rfc3339(&format!("{}T{}Z", &s[..10], &s[11..])).is_ok()
}

fn time_of(v: &Value) -> i64 {
    let s = v.as_str().unwrap();
    let dt = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.6f").unwrap();
    dt.and_utc().timestamp_micros()
}

const DAY: i64 = 86_400_000_000;

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let cfg = NotigenConfig {
        seed: 7,
        duration: Some(Duration::hours(6)),
        ..Default::default()
    };
    for envelope in [Envelope::Bare, Envelope::Oslo] {
        let a = serialise(Generator::new(cfg.clone()), envelope);
        let b = serialise(Generator::new(cfg.clone()), envelope);
        assert!(
            a.len() > 1_000_000,
            "six hours should be thousands of notifications"
        );
        assert!(
            a == b,
            "same seed and settings must give byte-identical output"
        );
    }
    let other = serialise(
        Generator::new(NotigenConfig {
            seed: 8,
            ..cfg.clone()
        }),
        Envelope::Bare,
    );
    assert_ne!(other, serialise(Generator::new(cfg), Envelope::Bare));
}

#[test]
fn output_for_the_default_seed_is_pinned() {
    // The generator owns its PRNG, so this never changes with dependency upgrades; a change
    // here means the generated traffic changed and must be deliberate.
    let first: Vec<Notification> = Generator::new(NotigenConfig {
        count: Some(2_000),
        ..Default::default()
    })
    .collect();
    assert_eq!(first[0].event_type, "compute.instance.update");
    assert_eq!(
        first[0].message_id.to_string(),
        "9c997702-1187-4557-b164-adc0b75294fd"
    );
    assert_eq!(
        first[0].timestamp.to_rfc3339(),
        "2026-01-01T00:00:08.438918+00:00"
    );
    let text = serialise(first.into_iter(), Envelope::Bare);
    assert_eq!(
        fnv1a(text.as_bytes()),
        PINNED_HASH,
        "output of seed 42 changed"
    );
}

const PINNED_HASH: u64 = 0x376c_04a2_579d_3ea6;

#[test]
fn timestamps_never_go_back_and_stay_in_the_run() {
    let run = two_days_default();
    assert!(
        run.len() > 150_000,
        "two default days: {} notifications",
        run.len()
    );
    let end = start() + Duration::days(2);
    for pair in run.windows(2) {
        assert!(
            pair[0].timestamp <= pair[1].timestamp,
            "{} after {}",
            pair[0].event_type,
            pair[1].event_type
        );
    }
    assert!(run[0].timestamp >= start());
    for n in run {
        if n.timestamp >= end {
            // Only the audit due at the end of the run may come after it.
            assert_eq!(n.event_type, "compute.instance.exists");
            assert!(n.timestamp < end + Duration::minutes(10));
        }
    }
}

#[test]
fn every_event_type_appears_in_two_days_at_the_default_rate() {
    let seen: BTreeSet<&str> = two_days_default().iter().map(|n| n.event_type).collect();
    let expected: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(seen, expected);
}

#[test]
fn requests_share_their_ids_and_every_start_ends_later() {
    let run = two_days_default();
    let mut requests: HashMap<Uuid, Vec<&Notification>> = HashMap::new();
    for n in run {
        requests.entry(n.request_id).or_default().push(n);
    }
    let cutoff = start() + Duration::days(2) - Duration::hours(2);
    let mut creates = 0;
    for events in requests.values() {
        let instance = events[0].instance_id;
        assert!(
            events.iter().all(|n| n.instance_id == instance),
            "one request, one instance"
        );
        if events[0].timestamp > cutoff {
            continue; // may have been cut off by the end of the run
        }
        let types: Vec<&str> = events.iter().map(|n| n.event_type).collect();
        for (i, t) in types.iter().enumerate() {
            if let Some(op) = t.strip_suffix(".start") {
                let end = format!("{op}.end");
                let ends: Vec<usize> = (0..types.len()).filter(|j| types[*j] == end).collect();
                assert_eq!(ends.len(), 1, "{t} has one {end} in {types:?}");
                assert!(ends[0] > i, "{end} after {t}");
                assert!(events[ends[0]].timestamp > events[i].timestamp);
            }
        }
        let non_exists: Vec<&&str> = types
            .iter()
            .filter(|t| **t != "compute.instance.exists")
            .collect();
        if types.contains(&"compute.instance.exists") {
            // Either the midnight audit (one exists per request) or rebuild/resize/rescue's.
            assert!(
                types.len() == 1
                    || ["rebuild", "resize.prep", "rescue"]
                        .iter()
                        .any(|op| types.contains(&format!("compute.instance.{op}.start").as_str())),
                "{types:?}"
            );
        }
        assert!(
            non_exists.len() != 1,
            "an operation emits several notifications: {types:?}"
        );
        if types.contains(&"compute.instance.create.start") {
            creates += 1;
            assert_eq!(
                types,
                [
                    "compute.instance.update",
                    "scheduler.run_instance.start",
                    "scheduler.run_instance.scheduled",
                    "scheduler.run_instance.end",
                    "compute.instance.create.start",
                    "compute.instance.update",
                    "compute.instance.update",
                    "compute.instance.update",
                    "compute.instance.update",
                    "compute.instance.create.end",
                ]
            );
        }
    }
    assert!(creates > 500, "creates: {creates}");
}

#[test]
fn request_context_and_envelope_fields_look_like_nova() {
    let run = two_days_slow();
    let mut checked = BTreeSet::new();
    for (n, v) in run {
        checked.insert(n.event_type);
        let o = v.as_object().unwrap();
        assert_eq!(o["event_type"], n.event_type);
        assert_eq!(o["message_id"], n.message_id.to_string());
        assert_eq!(n.message_id.get_version_num(), 4);
        assert_eq!(o["_context_request_id"], format!("req-{}", n.request_id));
        assert_eq!(o["priority"], "INFO");
        assert!(
            is_openstack_time(o["timestamp"].as_str().unwrap()),
            "{}",
            o["timestamp"]
        );
        assert!(is_openstack_time(o["_context_timestamp"].as_str().unwrap()));
        assert_eq!(time_of(&o["timestamp"]), n.timestamp.timestamp_micros());
        assert_eq!(o["publisher_id"], n.publisher_id());
        for key in [
            "_context_auth_token",
            "_context_is_admin",
            "_context_project_id",
            "_context_remote_address",
            "_context_roles",
            "_context_tenant",
            "_context_user",
            "_context_user_id",
            "_unique_id",
        ] {
            assert!(o.contains_key(key), "{} lacks {key}", n.event_type);
        }
        let publisher = n.publisher_id();
        let (service, host) = publisher.split_once('.').unwrap();
        let expected_service = if n.event_type.starts_with("scheduler.") {
            "scheduler"
        } else if n.event_type == "compute.instance.update" {
            // nova-api records a new task on an idle instance; compute does the rest.
            let p = &o["payload"];
            if p["old_task_state"].is_null() && !p["new_task_state"].is_null() {
                "api"
            } else {
                "compute"
            }
        } else {
            "compute"
        };
        assert_eq!(service, expected_service, "{}: {publisher}", n.event_type);
        assert!(
            host.rsplit_once('-')
                .is_some_and(|(_, num)| num.parse::<u16>().is_ok())
        );
        if n.event_type.starts_with("compute.") {
            assert_eq!(o["payload"]["instance_id"], n.instance_id.to_string());
            assert_eq!(o["payload"]["tenant_id"], o["_context_project_id"]);
        } else {
            let spec = &o["payload"]["request_spec"]["instance_properties"];
            assert_eq!(spec["uuid"], n.instance_id.to_string());
        }
    }
    assert_eq!(checked.len(), EVENT_TYPES.len());
}

/// Payload keys every captured sample of the event type has (from
/// shared/samples/nova-notifications.jsonl), which notigen must produce too.
fn sample_keys(event_type: &str) -> Vec<&'static str> {
    let mut keys = vec![
        "access_ip_v4",
        "access_ip_v6",
        "architecture",
        "availability_zone",
        "created_at",
        "deleted_at",
        "disk_gb",
        "display_name",
        "ephemeral_gb",
        "host",
        "hostname",
        "image_meta",
        "image_ref_url",
        "instance_flavor_id",
        "instance_id",
        "instance_type",
        "instance_type_id",
        "kernel_id",
        "launched_at",
        "memory_mb",
        "metadata",
        "node",
        "os_type",
        "ramdisk_id",
        "reservation_id",
        "root_gb",
        "state",
        "state_description",
        "tenant_id",
        "terminated_at",
        "user_id",
        "vcpus",
    ];
    match event_type {
        "compute.instance.update" => keys.extend([
            "audit_period_beginning",
            "audit_period_ending",
            "bandwidth",
            "new_task_state",
            "old_state",
            "old_task_state",
        ]),
        "compute.instance.exists" => {
            keys.extend(["audit_period_beginning", "audit_period_ending", "bandwidth"]);
        }
        "compute.instance.create.start" => keys.extend(["image_name", "message"]),
        "compute.instance.create.end" => keys.extend(["fixed_ips", "image_name", "message"]),
        "compute.instance.rebuild.start" => keys.push("image_name"),
        "compute.instance.rebuild.end" => keys.extend(["fixed_ips", "image_name"]),
        "compute.instance.rescue.start" | "compute.instance.rescue.end" => {
            keys.extend(["fixed_ips", "rescue_image_name"]);
        }
        "compute.instance.resize.prep.end" => {
            keys.extend(["new_instance_type", "new_instance_type_id"]);
        }
        "compute.instance.resize.confirm.end" => keys.push("fixed_ips"),
        "scheduler.run_instance.start" | "scheduler.run_instance.end" => {
            keys = vec!["request_spec"];
        }
        "scheduler.run_instance.scheduled" => {
            keys = vec!["instance_id", "request_spec", "weighted_host"];
        }
        _ => {}
    }
    keys
}

#[test]
fn payloads_have_the_keys_and_values_of_real_nova_traffic() {
    for (n, v) in two_days_slow() {
        let p = v["payload"].as_object().unwrap();
        for key in sample_keys(n.event_type) {
            assert!(p.contains_key(key), "{} lacks payload.{key}", n.event_type);
        }
        if n.event_type.starts_with("scheduler.") {
            let spec = &p["request_spec"];
            assert_eq!(spec["num_instances"], 1);
            assert_eq!(
                spec["instance_type"]["id"],
                spec["instance_properties"]["instance_type_id"]
            );
            continue;
        }
        let meta = p["image_meta"].as_object().unwrap();
        for key in [
            "org.openstack__1__architecture",
            "org.openstack__1__os_distro",
            "org.openstack__1__os_version",
            "base_image_ref",
        ] {
            assert!(meta[key].is_string(), "image_meta.{key}");
        }
        let int = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k} is an integer"));
        assert_eq!(int("disk_gb"), int("root_gb") + int("ephemeral_gb"));
        assert!(int("memory_mb") >= 512 && int("vcpus") >= 1 && int("instance_type_id") >= 2);
        assert!(p["instance_flavor_id"].is_string());
        for key in ["created_at", "launched_at", "deleted_at", "terminated_at"] {
            let s = p[key].as_str().unwrap();
            assert!(s.is_empty() || is_openstack_time(s), "{key}: {s}");
        }
        let state = p["state"].as_str().unwrap();
        assert!(
            [
                "building", "active", "stopped", "rescued", "resized", "deleted"
            ]
            .contains(&state),
            "{state}"
        );
        if p["deleted_at"] != "" {
            assert_eq!(state, "deleted");
            assert!(
                ["compute.instance.delete.end", "compute.instance.exists"].contains(&n.event_type),
                "{} with deleted_at",
                n.event_type
            );
        } else {
            assert_ne!(n.event_type, "compute.instance.delete.end");
        }
        if n.event_type == "compute.instance.update" {
            let begin = time_of(&p["audit_period_beginning"]);
            assert_eq!(begin % DAY, 0, "current audit period starts at midnight");
            assert_eq!(
                time_of(&p["audit_period_ending"]),
                n.timestamp.timestamp_micros()
            );
            assert_eq!(p["bandwidth"], serde_json::json!({}));
            assert_eq!(
                p["state_description"].as_str().unwrap(),
                p["new_task_state"].as_str().unwrap_or("")
            );
        }
        if n.event_type == "compute.instance.create.end" {
            assert_eq!(p["state"], "active");
            assert_eq!(p["message"], "Success");
            assert!(time_of(&p["launched_at"]) <= n.timestamp.timestamp_micros());
            assert_eq!(p["fixed_ips"].as_array().unwrap().len(), 3);
        }
    }
}

#[test]
fn resize_moves_to_the_new_flavor_and_host_and_is_confirmed_in_a_second_request() {
    let run = two_days_slow();
    let mut by_instance: HashMap<Uuid, Vec<&(Notification, Value)>> = HashMap::new();
    for item in run {
        by_instance
            .entry(item.0.instance_id)
            .or_default()
            .push(item);
    }
    let mut resizes = 0;
    for events in by_instance.values() {
        for (i, (n, v)) in events.iter().map(|e| (&e.0, &e.1)).enumerate() {
            if n.event_type != "compute.instance.resize.prep.start" {
                continue;
            }
            let rest = &events[i..];
            let find = |t: &str| {
                rest.iter()
                    .find(|e| e.0.event_type == t)
                    .map(|e| (&e.0, &e.1))
            };
            let (Some(prep_end), Some(finish), Some(confirm)) = (
                find("compute.instance.resize.prep.end"),
                find("compute.instance.finish_resize.end"),
                find("compute.instance.resize.confirm.end"),
            ) else {
                continue; // cut off by the end of the run
            };
            resizes += 1;
            let old = &v["payload"];
            let new = &finish.1["payload"];
            assert_ne!(old["instance_type_id"], new["instance_type_id"]);
            assert_eq!(
                prep_end.1["payload"]["new_instance_type_id"],
                new["instance_type_id"]
            );
            assert_eq!(
                prep_end.1["payload"]["new_instance_type"],
                new["instance_type"]
            );
            assert_ne!(old["host"], new["host"], "a resize migrates");
            assert_eq!(new["state"], "resized");
            assert!(time_of(&new["launched_at"]) > time_of(&old["launched_at"]));
            assert_eq!(confirm.1["payload"]["state"], "active");
            assert_eq!(
                confirm.1["payload"]["instance_type_id"],
                new["instance_type_id"]
            );
            assert_eq!(finish.0.request_id, n.request_id);
            assert_ne!(
                confirm.0.request_id, n.request_id,
                "confirming is a request of its own"
            );
        }
    }
    assert!(resizes > 20, "resizes: {resizes}");
}

#[test]
fn rebuild_resize_and_rescue_report_usage_so_far_first() {
    let run = two_days_slow();
    let mut requests: BTreeMap<Uuid, Vec<&(Notification, Value)>> = BTreeMap::new();
    for item in run {
        requests.entry(item.0.request_id).or_default().push(item);
    }
    let mut seen = 0;
    for events in requests.values() {
        let Some(start) = events.iter().position(|e| {
            matches!(
                e.0.event_type,
                "compute.instance.rebuild.start"
                    | "compute.instance.resize.prep.start"
                    | "compute.instance.rescue.start"
            )
        }) else {
            continue;
        };
        seen += 1;
        let exists = &events[start - 1];
        assert_eq!(exists.0.event_type, "compute.instance.exists");
        let p = &exists.1["payload"];
        let at = exists.0.timestamp.timestamp_micros();
        assert_eq!(
            time_of(&p["audit_period_beginning"]),
            at - at.rem_euclid(DAY)
        );
        assert_eq!(time_of(&p["audit_period_ending"]), at);
        if events[start].0.event_type == "compute.instance.rebuild.start" {
            // Nova reports the usage with the image the instance had before the rebuild.
            let before = &events[start - 2].1["payload"]; // the API's update
            assert_eq!(before["new_task_state"], "rebuilding");
            let end = events
                .iter()
                .find(|e| e.0.event_type == "compute.instance.rebuild.end");
            if let Some(end) = end {
                assert_eq!(end.1["payload"]["image_meta"], before["image_meta"]);
            }
        }
    }
    assert!(seen > 50, "{seen}");
}

#[test]
fn each_midnight_reports_every_instance_alive_that_day() {
    let run = two_days_slow();
    let midnights = [start() + Duration::days(1), start() + Duration::days(2)];
    // What the stream tells about each instance as of each midnight.
    #[derive(Default, Clone)]
    struct Known {
        launched: bool,
        terminated_at: Option<i64>,
    }
    let mut known: HashMap<Uuid, Known> = HashMap::new();
    let mut snapshots: Vec<HashMap<Uuid, Known>> = Vec::new();
    let mut rounds: Vec<BTreeMap<Uuid, &Value>> = vec![BTreeMap::new(), BTreeMap::new()];
    for (n, v) in run {
        while snapshots.len() < midnights.len() && n.timestamp >= midnights[snapshots.len()] {
            snapshots.push(known.clone());
        }
        let p = &v["payload"];
        if n.event_type == "compute.instance.exists" {
            let begin = time_of(&p["audit_period_beginning"]);
            let end = time_of(&p["audit_period_ending"]);
            if let Some(round) = midnights.iter().position(|m| m.timestamp_micros() == end) {
                assert_eq!(end - begin, DAY, "ending = beginning + 1 day");
                assert!(
                    rounds[round].insert(n.instance_id, v).is_none(),
                    "one exists per round"
                );
                assert!(
                    n.timestamp >= midnights[round]
                        && n.timestamp < midnights[round] + Duration::minutes(10)
                );
                continue;
            }
            assert!(end - begin < DAY, "other exists cover the day so far");
            continue;
        }
        if n.event_type.starts_with("scheduler.") {
            continue;
        }
        let entry = known.entry(n.instance_id).or_default();
        entry.launched = p["launched_at"] != "";
        entry.terminated_at = p["terminated_at"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|_| time_of(&p["terminated_at"]));
    }
    assert_eq!(snapshots.len(), 2);
    for (round, midnight) in midnights.iter().enumerate() {
        let m = midnight.timestamp_micros();
        let reported = &rounds[round];
        assert!(reported.len() > 500, "round {round}: {}", reported.len());
        let expected: BTreeSet<Uuid> = snapshots[round]
            .iter()
            .filter(|(_, k)| k.launched && k.terminated_at.is_none_or(|t| t > m - DAY))
            .map(|(id, _)| *id)
            .collect();
        for id in &expected {
            assert!(
                reported.contains_key(id),
                "round {round} misses live instance {id}"
            );
        }
        for id in reported.keys().filter(|id| !expected.contains(id)) {
            // Instances the stream has said nothing about yet: the quiet part of the initial
            // population, which the previous round must have reported too.
            assert!(
                !snapshots[round].contains_key(id),
                "{id} reported but not alive"
            );
            if round > 0 {
                assert!(
                    rounds[round - 1].contains_key(id),
                    "{id} appeared from nowhere"
                );
            }
        }
        let mut deleted = 0;
        for (id, v) in reported {
            let p = &v["payload"];
            assert_eq!(time_of(&p["audit_period_beginning"]), m - DAY);
            let deleted_at = p["deleted_at"].as_str().unwrap();
            if !deleted_at.is_empty() {
                deleted += 1;
                assert_eq!(p["state"], "deleted", "{id}");
                let t = time_of(&p["deleted_at"]);
                assert!(t >= m - DAY && t < m, "deleted during the audited day");
            } else {
                assert_ne!(p["state"], "deleted", "{id} deleted_at unset but deleted");
            }
        }
        assert!(
            deleted > 5,
            "round {round}: deleted instances are reported ({deleted})"
        );
        // The population stays near its target of 720.
        assert!(
            (576..=864).contains(&reported.len()),
            "round {round}: {}",
            reported.len()
        );
    }
}

#[test]
fn deleted_instances_are_only_reported_once_more_after_delete_end() {
    let run = two_days_slow();
    let mut deleted: HashMap<Uuid, (i64, Value)> = HashMap::new();
    let mut reported_after: HashSet<Uuid> = HashSet::new();
    let mut deletes = 0;
    for (n, v) in run {
        if let Some((at, deleted_at)) = deleted.get(&n.instance_id) {
            assert_eq!(
                n.event_type, "compute.instance.exists",
                "{} after delete.end",
                n.event_type
            );
            let p = &v["payload"];
            assert_eq!(&p["deleted_at"], deleted_at);
            let midnight = at - at.rem_euclid(DAY) + DAY;
            assert_eq!(
                time_of(&p["audit_period_ending"]),
                midnight,
                "the next midnight audit"
            );
            assert!(reported_after.insert(n.instance_id), "reported once");
        }
        if n.event_type == "compute.instance.delete.end" {
            deletes += 1;
            let p = &v["payload"];
            assert_eq!(p["state"], "deleted");
            assert_eq!(p["deleted_at"], p["terminated_at"]);
            deleted.insert(
                n.instance_id,
                (n.timestamp.timestamp_micros(), p["deleted_at"].clone()),
            );
        }
    }
    assert!(deletes > 20, "deletes: {deletes}");
    // Every deletion is reported by the following midnight's audit, unless the instance was
    // terminated before that midnight's day began (a delete.end just after midnight), as Nova
    // reports instances terminated during the audited day only.
    let reportable = deleted
        .values()
        .filter(|(at, deleted_at)| time_of(deleted_at) >= at - at.rem_euclid(DAY))
        .count();
    assert_eq!(reported_after.len(), reportable);
}

#[test]
fn count_and_duration_limit_the_run() {
    let mut g = Generator::new(NotigenConfig {
        count: Some(1_000),
        ..Default::default()
    });
    assert_eq!(g.now(), start());
    let got: Vec<Notification> = g.by_ref().collect();
    assert_eq!(got.len(), 1_000);
    assert_eq!(g.generated(), 1_000);
    assert_eq!(g.now(), got[999].timestamp);
    assert!(g.next().is_none());

    // Whichever limit comes first: one hour ends the run long before a billion notifications.
    let hour = run(NotigenConfig {
        duration: Some(Duration::hours(1)),
        count: Some(1_000_000_000),
        ..Default::default()
    });
    assert!(hour.len() > 2_000 && hour.len() < 10_000, "{}", hour.len());
    assert!(
        hour.iter()
            .all(|n| n.timestamp < start() + Duration::hours(1))
    );

    // A count alone runs past the default day.
    let slow = NotigenConfig {
        operations_per_hour: 60.0,
        count: Some(15_000),
        ..Default::default()
    };
    let long = run(slow.clone());
    assert_eq!(long.len(), 15_000);
    assert!(long[14_999].timestamp > start() + Duration::days(1));

    // Neither: one day, with the one audit at its end.
    let day = run(NotigenConfig {
        count: None,
        ..slow
    });
    let last_op = day
        .iter()
        .rfind(|n| n.event_type != "compute.instance.exists")
        .unwrap();
    assert!(last_op.timestamp < start() + Duration::days(1));
    let audits = day
        .iter()
        .filter(|n| n.timestamp >= start() + Duration::days(1))
        .count();
    assert!(audits > 500, "{audits}");
    assert!(
        day.iter()
            .filter(|n| n.timestamp >= start() + Duration::days(1))
            .all(|n| n.event_type == "compute.instance.exists")
    );
}

#[test]
fn without_operations_only_the_audits_remain() {
    let run = run(NotigenConfig {
        operations_per_hour: 0.0,
        duration: Some(Duration::days(2)),
        ..Default::default()
    });
    assert_eq!(run.len(), 40, "20 instances, two midnights");
    assert!(
        run.iter()
            .all(|n| n.event_type == "compute.instance.exists")
    );
    let ids: HashSet<Uuid> = run.iter().map(|n| n.instance_id).collect();
    assert_eq!(ids.len(), 20);
}

#[test]
fn envelopes_parse_back_to_the_same_notification() {
    let cfg = NotigenConfig {
        count: Some(3_000),
        ..Default::default()
    };
    let mut line = String::new();
    for n in Generator::new(cfg) {
        let value = n.to_value();
        line.clear();
        n.write_json(Envelope::Bare, &mut line);
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), value);
        line.clear();
        n.write_json(Envelope::Oslo, &mut line);
        let outer: serde_json::Map<String, Value> = serde_json::from_str(&line).unwrap();
        assert_eq!(outer.len(), 2);
        assert_eq!(outer["oslo.version"], "2.0");
        let inner: Value = serde_json::from_str(outer["oslo.message"].as_str().unwrap()).unwrap();
        assert_eq!(inner, value);
    }
}

#[test]
fn write_json_appends() {
    let n = Generator::new(NotigenConfig::default()).next().unwrap();
    let mut out = String::from("prefix");
    n.write_json(Envelope::Bare, &mut out);
    assert!(out.starts_with("prefix{\"_context_auth_token\":"));
}
