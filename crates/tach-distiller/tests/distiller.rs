//! The public API: definition errors (exact messages), poison notifications, the oslo
//! envelope, timestamps, custom plugins, warnings and counters.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tach_distiller::{
    DefinitionError, Distiller, FieldMatch, NotificationError, PluginParams, PluginRegistry,
    PluginValue, TraitPlugin, TraitValue,
};

const ORIGIN: &str = "config/x.yaml";

fn load(yaml: &str) -> Result<Distiller, DefinitionError> {
    Distiller::from_yaml(yaml, Path::new(ORIGIN), false)
}

fn load_error(yaml: &str) -> String {
    load(yaml).unwrap_err().to_string()
}

/// Two valid definitions, so that errors below are in definition #2.
const PRELUDE: &str = "\
- event_type: a.*
  traits: {}
- event_type: b.*
  traits:
    x:
      fields: payload.x
";

#[test]
fn unknown_type_names_file_definition_trait_and_line() {
    let yaml = format!(
        "{PRELUDE}- event_type: compute.*
  traits:
    state:
      fields: payload.state
    memory_mb:
      type: integer
      fields: payload.memory_mb
"
    );
    assert_eq!(
        load_error(&yaml),
        "config/x.yaml: definition #2 (event_type compute.*): trait `memory_mb`: unknown type `integer` (line 12)"
    );
}

#[test]
fn document_and_definition_shape_errors() {
    assert_eq!(
        load_error("event_type: x\ntraits: {}\n"),
        "config/x.yaml: expected a list of event definitions, found a mapping (line 1)"
    );
    assert_eq!(
        load_error("- just a string\n"),
        "config/x.yaml: definition #0: expected a mapping with `event_type` and `traits`, found a string (line 1)"
    );
    assert_eq!(
        load_error(&format!("{PRELUDE}- traits: {{}}\n")),
        "config/x.yaml: definition #2: missing `event_type` (line 7)"
    );
    assert_eq!(
        load_error("- event_type: a.b\n  trait: {}\n"),
        "config/x.yaml: definition #0 (event_type a.b): missing `traits` (line 1)"
    );
    assert_eq!(
        load_error("- event_type: a.b\n  traits: [x]\n"),
        "config/x.yaml: definition #0 (event_type a.b): `traits` must be a mapping, found a list (line 2)"
    );
    assert_eq!(
        load_error("- event_type: 5\n  traits: {}\n"),
        "config/x.yaml: definition #0: `event_type` must be a glob or a list of globs, found an integer (line 1)"
    );
    assert_eq!(
        load_error("- event_type: []\n  traits: {}\n"),
        "config/x.yaml: definition #0 (event_type []): `event_type` is an empty list (line 1)"
    );
    assert_eq!(
        load_error("- event_type: [a.*, 7]\n  traits: {}\n"),
        "config/x.yaml: definition #0 (event_type [a.*, 7]): `event_type` entries must be strings, found an integer (line 1)"
    );
}

#[test]
fn trait_errors() {
    let err = |traits: &str| {
        load_error(&format!(
            "- event_type: [a.*, \"!a.b\"]\n  traits:\n{traits}"
        ))
    };
    let at = "config/x.yaml: definition #0 (event_type [a.*, !a.b])";
    assert_eq!(
        err("    x:\n      type: int\n"),
        format!("{at}: trait `x`: missing `fields` (line 3)")
    );
    assert_eq!(
        err("    x:\n      fields: []\n"),
        format!("{at}: trait `x`: `fields` is an empty list (line 4)")
    );
    assert_eq!(
        err("    x:\n      fields: {a: b}\n"),
        format!(
            "{at}: trait `x`: `fields` must be a path or a list of paths, found a mapping (line 4)"
        )
    );
    assert_eq!(
        err("    x:\n      fields:\n        - payload.ok\n        - payload.bogus(\n"),
        format!(
            "{at}: trait `x`: bad path `payload.bogus(`: unexpected `(` at position 14 (line 6)"
        )
    );
    assert_eq!(
        err("    x:\n      fields:\n        - payload.ok\n        - 12\n"),
        format!("{at}: trait `x`: paths in `fields` must be strings, found an integer (line 6)")
    );
    assert_eq!(
        err("    x: payload.x\n"),
        format!("{at}: trait `x`: expected a mapping with `fields`, found a string (line 3)")
    );
    assert_eq!(
        err("    timestamp:\n      fields: payload.x\n"),
        format!("{at}: trait `timestamp`: this name is reserved for the event itself (line 3)")
    );
    assert_eq!(
        err("    x:\n      type: [int]\n      fields: payload.x\n"),
        format!("{at}: trait `x`: unknown type `[int]` (line 4)")
    );
}

#[test]
fn plugin_errors() {
    let err = |traits: &str| load_error(&format!("- event_type: a.*\n  traits:\n{traits}"));
    let at = "config/x.yaml: definition #0 (event_type a.*)";
    assert_eq!(
        err("    x:\n      fields: payload.x\n      plugin: bogus\n"),
        format!("{at}: trait `x`: unknown plugin `bogus` (available: bitfield, split) (line 5)")
    );
    assert_eq!(
        err("    x:\n      fields: payload.x\n      plugin:\n        name: bogus\n"),
        format!("{at}: trait `x`: unknown plugin `bogus` (available: bitfield, split) (line 6)")
    );
    assert_eq!(
        err("    x:\n      fields: payload.x\n      plugin:\n        parameters: {}\n"),
        format!("{at}: trait `x`: plugin has no `name` (line 6)")
    );
    assert_eq!(
        err(
            "    x:\n      fields: payload.x\n      plugin:\n        name: split\n        parameters:\n          segment: one\n"
        ),
        format!(
            "{at}: trait `x`: plugin `split`: `segment` must be an integer, not a string (line 8)"
        )
    );
    assert_eq!(
        err(
            "    x:\n      fields: payload.x\n      plugin:\n        name: split\n        parameters: [1]\n"
        ),
        format!("{at}: trait `x`: plugin `parameters` must be a mapping, found a list (line 7)")
    );
    assert_eq!(
        err(
            "    x:\n      fields: payload.x\n      plugin:\n        name: bitfield\n        parameters:\n          flags:\n            - bit: 1\n"
        ),
        format!("{at}: trait `x`: plugin `bitfield`: flag #0: missing `path` (line 8)")
    );
    assert_eq!(
        err("    x:\n      fields: payload.x\n      plugin: 3\n"),
        format!(
            "{at}: trait `x`: `plugin` must be a name or a mapping with `name` and `parameters`, found an integer (line 5)"
        )
    );
}

#[test]
fn errors_in_merged_traits_point_at_the_anchor() {
    let yaml = "\
- event_type: a.*
  traits: &shared
    x:
      type: number
      fields: payload.x
";
    assert_eq!(
        load_error(yaml),
        "config/x.yaml: definition #0 (event_type a.*): trait `x`: unknown type `number` (line 4)"
    );
}

#[test]
fn yaml_syntax_and_read_errors() {
    assert_eq!(
        load_error("- event_type: a.*\n  traits: *nowhere\n"),
        "config/x.yaml: invalid YAML: alias references unknown anchor (line 2, column 11)"
    );
    let missing = Distiller::from_file(Path::new("/nonexistent/defs.yaml"), false).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "cannot read event definitions from /nonexistent/defs.yaml"
    );
    assert!(matches!(missing, DefinitionError::Read { .. }));
}

#[test]
fn empty_files_have_no_definitions() {
    assert_eq!(load("").unwrap().definition_count(), 0);
    assert_eq!(load("---\n[]\n").unwrap().definition_count(), 0);
    let catch_all = Distiller::from_yaml("", Path::new(ORIGIN), true).unwrap();
    assert_eq!(catch_all.definition_count(), 1);
    // A file that already has a catch-all gets no second one.
    let own =
        Distiller::from_yaml("- event_type: '*'\n  traits: {}\n", Path::new(ORIGIN), true).unwrap();
    assert_eq!(own.definition_count(), 1);
}

#[test]
fn unknown_keys_are_warnings_with_suggestions() {
    let yaml = "\
- event_type: a.*
  trait_list: {}
  traits:
    x:
      typ: int
      fields: payload.x
      plugin:
        name: split
        params: {}
";
    let distiller = load(yaml).unwrap();
    assert_eq!(
        distiller.warnings(),
        [
            "config/x.yaml: definition #0 (event_type a.*): unknown key `trait_list` ignored (line 2)",
            "config/x.yaml: definition #0 (event_type a.*): trait `x`: unknown key `typ` ignored (did you mean `type`?) (line 5)",
            "config/x.yaml: definition #0 (event_type a.*): trait `x`: unknown key `params` ignored (line 9)",
        ]
    );
}

fn simple() -> Distiller {
    load("- event_type: '*'\n  traits:\n    state:\n      fields: payload.state\n").unwrap()
}

fn poison(raw: &str) -> String {
    simple()
        .distill_bytes(raw.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn poison_notifications() {
    assert_eq!(
        poison("{\"a\":"),
        "not valid JSON: Invalid JSON value at line 1 column 6"
    );
    assert_eq!(
        poison(""),
        "not valid JSON: Invalid JSON value at line 1 column 1"
    );
    assert_eq!(poison("[1, 2]"), "not a JSON object");
    assert_eq!(poison("\"text\""), "not a JSON object");
    assert_eq!(poison(r#"{"message_id": "m"}"#), "no event_type");
    assert_eq!(poison(r#"{"event_type": "x"}"#), "no message_id");
    assert_eq!(
        poison(r#"{"event_type": 1, "message_id": "m"}"#),
        "event_type is not a string"
    );
    assert_eq!(
        poison(r#"{"event_type": "x", "message_id": null}"#),
        "message_id is not a string"
    );
    assert_eq!(
        simple().distill_bytes(b"\xff\xfe").unwrap_err(),
        NotificationError::InvalidJson("Invalid JSON value at line 1 column 1".into())
    );
    assert_eq!(
        simple()
            .distill_bytes(b"{\"event_type\": \"a\xffb\", \"message_id\": \"m\"}")
            .unwrap_err(),
        NotificationError::InvalidJson(
            "Invalid UTF-8 characters in json at line 1 column 18".into()
        )
    );
}

#[test]
fn deeply_nested_json_is_poison_not_a_crash() {
    // Rejected before parsing, so even a small stack is enough.
    let hostile = format!(
        r#"{{"event_type": "x", "payload": {}}}"#,
        "[".repeat(1_000_000)
    );
    let distiller = Arc::new(simple());
    let shared = Arc::clone(&distiller);
    std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || shared.distill_bytes(hostile.as_bytes()))
        .unwrap()
        .join()
        .map(|r| assert_eq!(r, Err(NotificationError::TooDeep(1000))))
        .unwrap();
    let nested = |depth: usize| {
        format!(
            r#"{{"event_type": "x", "message_id": "m", "payload": {{"state": "up", "deep": {}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // sonic-rs parses recursively: ~200 bytes of stack per level in release builds, but
    // ~25 KiB in debug builds, so the 1000-level boundary needs a large stack here.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let d = distiller;
            assert_eq!(
                d.distill_bytes(nested(100_000).as_bytes()),
                Err(NotificationError::TooDeep(1000))
            );
            // The limit counts every level: the root and the payload are two.
            assert!(d.distill_bytes(nested(998).as_bytes()).unwrap().is_some());
            assert_eq!(
                d.distill_bytes(nested(999).as_bytes()),
                Err(NotificationError::TooDeep(1000))
            );
            // Brackets inside strings do not count.
            let in_string = format!(
                r#"{{"event_type": "x", "message_id": "m", "payload": {{"state": "{}\"["}}}}"#,
                "[".repeat(5000)
            );
            assert!(d.distill_bytes(in_string.as_bytes()).unwrap().is_some());
            let envelope = serde_json::json!({"oslo.version": "2.0", "oslo.message": nested(5000)});
            assert_eq!(
                d.distill_bytes(envelope.to_string().as_bytes()),
                Err(NotificationError::TooDeep(1000))
            );
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        NotificationError::TooDeep(1000).to_string(),
        "nested deeper than 1000 levels"
    );
}

#[test]
fn oslo_envelopes() {
    let inner = r#"{"event_type": "x", "message_id": "m", "timestamp": "2016-03-01 00:00:00", "payload": {"state": "up"}}"#;
    let envelope = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}).to_string();
    let event = simple()
        .distill_bytes(envelope.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(event.message_id, "m");
    assert_eq!(
        event.trait_value("state"),
        Some(&TraitValue::Text("up".into()))
    );

    assert_eq!(
        poison(r#"{"oslo.version": "2.0", "oslo.message": {"event_type": "x"}}"#),
        "oslo.message is not a JSON string"
    );
    assert_eq!(
        poison(r#"{"oslo.version": "2.0", "oslo.message": "{\"event_type\": "}"#),
        "oslo.message is not valid JSON: Invalid JSON value at line 1 column 16"
    );
    assert_eq!(
        poison(r#"{"oslo.version": "2.0", "oslo.message": "[]"}"#),
        "oslo.message is not a JSON object"
    );
    assert_eq!(
        poison(r#"{"oslo.version": "3.0", "oslo.message": "{}"}"#),
        "unsupported oslo.version 3.0 (expected 2.0)"
    );
    assert_eq!(
        poison(r#"{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"m\"}"}"#),
        "no event_type"
    );
    // Only both keys make an envelope; one alone is an ordinary (here: poison) notification.
    assert_eq!(poison(r#"{"oslo.message": "{}"}"#), "no event_type");
}

#[test]
fn timestamp_falls_back_to_now() {
    let before = Utc::now();
    let event = simple()
        .distill_bytes(br#"{"event_type": "x", "message_id": "m", "payload": {"state": "up"}}"#)
        .unwrap()
        .unwrap();
    let after = Utc::now();
    assert!(
        event.timestamp >= before - chrono::TimeDelta::microseconds(1) && event.timestamp <= after
    );
    assert_eq!(event.timestamp.timestamp_subsec_nanos() % 1000, 0);

    // An unparsable timestamp is counted and the next source used.
    let distiller = simple();
    let event = distiller
        .distill_bytes(br#"{"event_type": "x", "message_id": "m", "timestamp": "soon", "_context_timestamp": "2016-03-01T00:00:00Z", "payload": {"state": "up"}}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        event.timestamp,
        tach_timex::parse_datetime("2016-03-01 00:00:00").unwrap()
    );
    assert_eq!(distiller.stats().conversion_failures, 1);
}

/// Each call's matches as (path, value JSON) pairs.
type Calls = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Records what it was given and answers the number of matches.
struct Recorder {
    seen: Calls,
    offset: i64,
}

impl TraitPlugin for Recorder {
    fn trait_value<'a>(&self, matches: &[FieldMatch<'a>]) -> Option<PluginValue<'a>> {
        let call = matches
            .iter()
            .map(|m| (m.path.to_owned(), sonic_rs::to_string(m.value).unwrap()))
            .collect();
        self.seen.lock().unwrap().push(call);
        Some(PluginValue::Int(self.offset + matches.len() as i64))
    }
}

#[test]
fn custom_plugins_see_all_matches_with_paths() {
    let seen: Calls = Arc::new(Mutex::new(Vec::new()));
    let mut registry = PluginRegistry::with_builtins();
    let shared = Arc::clone(&seen);
    registry.register("recorder", move |params: &PluginParams| {
        params.check_known(&["offset"])?;
        Ok(Box::new(Recorder {
            seen: Arc::clone(&shared),
            offset: params.int_or("offset", 0)?,
        }) as Box<dyn TraitPlugin>)
    });
    let yaml = "\
- event_type: '*'
  traits:
    count:
      type: int
      fields:
        - payload.instance_id
        - payload.missing
        - payload.nothing
        - payload.ips[*].address
        - payload.image_meta.'org.openstack__1__architecture'
      plugin:
        name: recorder
        parameters:
          offset: 100
    none:
      type: text
      fields: payload.missing
      plugin: recorder
";
    let distiller =
        Distiller::from_yaml_with_plugins(yaml, Path::new(ORIGIN), false, &registry).unwrap();
    let raw = br#"{"event_type": "x", "message_id": "m", "timestamp": "2016-03-01 00:00:00",
        "payload": {"instance_id": "i-1", "nothing": null, "ips": [{"address": "a1"}, {"address": "a2"}],
                    "image_meta": {"org.openstack__1__architecture": "x64"}}}"#;
    let event = distiller.distill_bytes(raw).unwrap().unwrap();
    assert_eq!(event.trait_value("count"), Some(&TraitValue::Int(104)));
    // Plugins run even when nothing matched.
    assert_eq!(
        event.trait_value("none"),
        Some(&TraitValue::Text("0".into()))
    );
    let calls = seen.lock().unwrap().clone();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        calls,
        [
            pairs(&[
                ("payload.instance_id", "\"i-1\""),
                ("payload.ips.[0].address", "\"a1\""),
                ("payload.ips.[1].address", "\"a2\""),
                (
                    "payload.image_meta.org.openstack__1__architecture",
                    "\"x64\""
                ),
            ]),
            vec![],
        ]
    );
    let bad = Distiller::from_yaml_with_plugins(
        "- event_type: '*'\n  traits:\n    c:\n      fields: a\n      plugin:\n        name: recorder\n        parameters: {offst: 1}\n",
        Path::new(ORIGIN),
        false,
        &registry,
    )
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "config/x.yaml: definition #0 (event_type *): trait `c`: plugin `recorder`: unknown parameter `offst` (expected `offset`) (line 7)"
    );
}

#[test]
fn distillers_are_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Distiller>();
    let distiller = Arc::new(simple());
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let d = Arc::clone(&distiller);
            std::thread::spawn(move || {
                let raw =
                    format!(r#"{{"event_type": "nope", "message_id": "m{i}", "payload": {{}}}}"#);
                d.distill_bytes(raw.as_bytes()).unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), None);
    }
    assert_eq!(distiller.stats().events_without_traits, 2);
}
