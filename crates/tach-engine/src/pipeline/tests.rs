//! Pipeline behaviour (DESIGN §6): pipelines.yaml, the registry, commit/rollback, new events,
//! and the usage audit's verdicts U0–U8, warnings and message ids.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tach_distiller::{Event, TraitValue};

use super::usage::{self, FAILED, NOTIFICATIONS_KEY, VERIFIED, WARNINGS, derived_message_id};
use super::*;
use crate::testutil::{date, event, stacktach_dir, text};

/// `pipeline_handlers` of StackTach's sandbox, mapped.
fn sandbox_handlers() -> BTreeMap<String, String> {
    [
        ("logger", "logger"),
        ("usage", "usage"),
        ("notabene", "notabene"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn parse(yaml: &str) -> Result<PipelineConfig, crate::Error> {
    PipelineConfig::parse(yaml, Path::new("p.yaml"), &sandbox_handlers())
}

// ---- pipelines.yaml -------------------------------------------------------------------------

#[test]
fn stacktach_pipelines_load_with_their_params() {
    let path = stacktach_dir().join("sandbox/pipelines.yaml");
    let config = PipelineConfig::load(&path, &sandbox_handlers()).expect("loads");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let fire = config.get("test_fire_pipeline").expect("defined");
    let names: Vec<&str> = fire.handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["logger", "usage", "notabene"]);
    assert_eq!(fire.handlers[0].params, json!({}));
    assert_eq!(fire.handlers[2].params["exchange"], json!("nova"));
    assert_eq!(
        fire.handlers[2].params["env_keys"],
        json!(["usage_notifications"])
    );
    assert_eq!(fire.handlers[2].params["port"], json!(5672));
    assert!(config.get("test_expire_pipeline").is_some());

    let etc = PipelineConfig::load(
        &stacktach_dir().join("winchester-etc/pipelines.yaml"),
        &BTreeMap::from([("logger".to_string(), "logger".to_string())]),
    )
    .expect("loads");
    assert_eq!(etc.pipelines.len(), 2);
}

#[test]
fn handler_names_resolve_through_pipeline_handlers() {
    let handlers = BTreeMap::from([("log".to_string(), "logger".to_string())]);
    let config =
        PipelineConfig::parse("p: [log]\n", Path::new("p.yaml"), &handlers).expect("parses");
    let handler = &config.pipelines["p"].handlers[0];
    assert_eq!(
        (handler.name.as_str(), handler.handler.as_str()),
        ("log", "logger")
    );
}

#[test]
fn pipeline_errors_name_the_pipeline_and_the_handler() {
    assert_eq!(
        parse("p:\n  - logger\n  - usgae\n")
            .expect_err("unknown")
            .to_string(),
        "p.yaml: pipeline `p`: unknown handler `usgae` (did you mean `usage`? winchester.yaml's \
         pipeline_handlers declares: logger, notabene, usage)"
    );
    assert_eq!(
        parse("p: [{params: {a: 1}}]\n")
            .expect_err("no name")
            .to_string(),
        "p.yaml: pipeline `p`: a handler entry has no `name` ({\"params\":{\"a\":1}})"
    );
    assert_eq!(
        parse("p: [{name: logger, params: [1]}]\n")
            .expect_err("bad params")
            .to_string(),
        "p.yaml: pipeline `p`: handler `logger`: `params` must be a mapping, found a list"
    );
    assert_eq!(
        parse("p: logger\n").expect_err("not a list").to_string(),
        "p.yaml: pipeline `p`: expected a list of handlers, found a string"
    );
    assert_eq!(
        parse("- p\n").expect_err("not a mapping").to_string(),
        "p.yaml: the file: expected a mapping of pipeline name to handler list, found a list"
    );
    let warnings = parse("p: [{name: logger, parms: {a: 1}}]\n")
        .expect("parses")
        .warnings;
    assert_eq!(
        warnings,
        vec![
            "p.yaml: pipeline `p`: handler #1: unknown key `parms` (did you mean `params`?); ignored"
        ]
    );
}

#[test]
fn triggers_must_name_defined_pipelines() {
    let config = parse("usage_fire: [logger]\n").expect("parses");
    let triggers = crate::trigger::parse_triggers(
        "- name: t\n  expiration: $last + 1d\n  fire_pipeline: usage_fire\n  \
         expire_pipeline: usage_expire\n  fire_criteria: []\n  match_criteria: [{}]\n",
        Path::new("t.yaml"),
    )
    .expect("parses")
    .triggers;
    assert_eq!(
        config
            .check_triggers(&triggers)
            .expect_err("missing")
            .to_string(),
        "p.yaml: trigger `t`: `expire_pipeline` names pipeline `usage_expire`, which is not \
         defined (did you mean `usage_fire`?)"
    );
}

// ---- registry and runs ----------------------------------------------------------------------

/// A handler that records what happens to it.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    fail: bool,
    fail_commit: bool,
    add: Option<Event>,
}

impl Recorder {
    fn boxed(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Box<Recorder> {
        Box::new(Recorder {
            name,
            log: Arc::clone(log),
            fail: false,
            fail_commit: false,
            add: None,
        })
    }

    fn note(&self, what: String) {
        self.log.lock().expect("log").push(what);
    }
}

impl Handler for Recorder {
    fn handle(
        &mut self,
        mut events: Vec<Event>,
        env: &mut Environment,
    ) -> Result<Vec<Event>, HandlerError> {
        let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        self.note(format!("{} handle {}", self.name, ids.join(",")));
        env.insert(self.name, Value::from(events.len()));
        if self.fail {
            return Err(HandlerError::Failed {
                handler: self.name.to_string(),
                reason: "boom".to_string(),
            });
        }
        events.extend(self.add.take());
        Ok(events)
    }

    fn commit(&mut self, env: &Environment) -> Result<(), HandlerError> {
        self.note(format!("{} commit {}", self.name, env.stream_id));
        if self.fail_commit {
            return Err(HandlerError::Failed {
                handler: self.name.to_string(),
                reason: "commit failed".to_string(),
            });
        }
        Ok(())
    }

    fn rollback(&mut self, env: &Environment) {
        self.note(format!("{} rollback {}", self.name, env.stream_id));
    }
}

#[test]
fn a_successful_run_commits_every_handler_and_returns_new_events() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut first = Recorder::boxed("first", &log);
    first.add = Some(event("new", "made.up", "2014-08-01 12:00:00", &[]));
    let mut second = Recorder::boxed("second", &log);
    second.add = Some(event(
        "e1",
        "duplicate.of.input",
        "2014-08-01 12:00:00",
        &[],
    ));
    let mut pipeline = Pipeline::from_handlers(
        "p",
        vec![
            ("first".into(), first as Box<dyn Handler>),
            ("second".into(), second),
        ],
    );
    let mut env = Environment::new(7, "trigger");
    let events = vec![
        event("e2", "b", "2014-08-01 11:00:00", &[]),
        event("e1", "a", "2014-08-01 10:00:00", &[]),
    ];
    let outcome = pipeline.run(events, &mut env);
    assert!(outcome.succeeded());
    let new: Vec<&str> = outcome
        .new_events
        .iter()
        .map(|e| e.message_id.as_str())
        .collect();
    assert_eq!(
        new,
        ["new"],
        "input ids are not new, even when a handler re-adds them"
    );
    assert!(outcome.commit_errors.is_empty());
    assert_eq!(
        *log.lock().expect("log"),
        [
            "first handle e1,e2",
            "second handle e1,e2,new",
            "first commit 7",
            "second commit 7"
        ],
        "events arrive sorted by timestamp; commit runs on every handler"
    );
    assert_eq!(env.get("first"), Some(&json!(2)));
    assert_eq!(env.get("second"), Some(&json!(3)));
    assert_eq!(env.stream_name, "trigger");
}

#[test]
fn a_failed_commit_fails_the_run_but_the_other_handlers_still_commit() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut first = Recorder::boxed("first", &log);
    first.add = Some(event("new", "made.up", "2014-08-01 12:00:00", &[]));
    first.fail_commit = true;
    let mut second = Recorder::boxed("second", &log);
    second.fail_commit = true;
    let third = Recorder::boxed("third", &log);
    let mut pipeline = Pipeline::from_handlers(
        "p",
        vec![
            ("first".into(), first as Box<dyn Handler>),
            ("second".into(), second),
            ("third".into(), third),
        ],
    );
    let mut env = Environment::new(7, "trigger");
    let outcome = pipeline.run(vec![event("e1", "a", "2014-08-01 10:00:00", &[])], &mut env);
    assert!(!outcome.succeeded());
    assert!(outcome.new_events.is_empty(), "a failed run stores nothing");
    let failure = outcome.failure.expect("failure");
    assert_eq!(failure.handler, "first");
    assert_eq!(
        failure.error.to_string(),
        "handler `first` failed: commit failed"
    );
    assert_eq!(outcome.commit_errors.len(), 1);
    assert_eq!(outcome.commit_errors[0].handler, "second");
    assert_eq!(
        *log.lock().expect("log"),
        [
            "first handle e1",
            "second handle e1,new",
            "third handle e1,new",
            "first commit 7",
            "second commit 7",
            "third commit 7"
        ],
        "no rollback after handle succeeded; every handler still commits"
    );
}

#[test]
fn a_failed_handler_rolls_back_every_handler() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let first = Recorder::boxed("first", &log);
    let mut second = Recorder::boxed("second", &log);
    second.fail = true;
    let third = Recorder::boxed("third", &log);
    let mut pipeline = Pipeline::from_handlers(
        "p",
        vec![
            ("first".into(), first as Box<dyn Handler>),
            ("second".into(), second),
            ("third".into(), third),
        ],
    );
    let mut env = Environment::new(9, "t");
    let outcome = pipeline.run(vec![event("e1", "a", "2014-08-01 10:00:00", &[])], &mut env);
    assert!(!outcome.succeeded());
    assert!(outcome.new_events.is_empty());
    let failure = outcome.failure.expect("failure");
    assert_eq!(failure.handler, "second");
    assert_eq!(failure.error.to_string(), "handler `second` failed: boom");
    assert_eq!(
        *log.lock().expect("log"),
        [
            "first handle e1",
            "second handle e1",
            "first rollback 9",
            "second rollback 9",
            "third rollback 9"
        ]
    );
}

#[test]
fn the_registry_builds_pipelines_and_accepts_more_handlers() {
    let mut registry = HandlerRegistry::with_builtins();
    assert_eq!(registry.names(), ["logger", "usage"]);
    let config = PipelineConfig::load(
        &stacktach_dir().join("sandbox/pipelines.yaml"),
        &sandbox_handlers(),
    )
    .expect("loads");
    assert_eq!(
        registry
            .check(&config)
            .expect_err("no notabene yet")
            .to_string(),
        "pipeline `test_expire_pipeline`: no handler `notabene` is registered (registered: \
         logger, usage)"
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&log);
    registry.register("notabene", move |params| {
        if params.get("exchange").is_none() {
            return Err(HandlerError::InvalidParams {
                handler: "notabene".into(),
                reason: "no `exchange`".into(),
            });
        }
        Ok(Recorder::boxed("notabene", &shared) as Box<dyn Handler>)
    });
    registry.check(&config).expect("all registered");
    let mut pipeline = Pipeline::build(
        config.get("test_fire_pipeline").expect("defined"),
        &registry,
    )
    .expect("builds");
    assert_eq!(pipeline.name(), "test_fire_pipeline");
    let mut env = Environment::new(1, "test_trigger");
    let outcome = pipeline.run(
        vec![event(
            "u1",
            "compute.instance.update",
            "2014-08-01 10:00:00",
            &[],
        )],
        &mut env,
    );
    assert!(outcome.succeeded());
    assert_eq!(
        outcome.new_events.len(),
        1,
        "usage reports U0 for a stream without exists"
    );
    assert_eq!(
        *log.lock().expect("log"),
        [
            format!("notabene handle u1,{}", derived_message_id("u1", FAILED)),
            "notabene commit 1".to_string()
        ],
        "notabene sees usage's output"
    );

    let bad = PipelineConfig::parse(
        "p: [{name: notabene, params: {}}]\n",
        Path::new("p.yaml"),
        &sandbox_handlers(),
    )
    .expect("parses");
    assert_eq!(
        Pipeline::build(bad.get("p").expect("defined"), &registry)
            .expect_err("invalid")
            .to_string(),
        "handler `notabene`: invalid params: no `exchange`"
    );
    assert_eq!(
        HandlerRegistry::empty()
            .create("logger", &json!({}))
            .err()
            .map(|e| e.to_string()),
        Some("no handler `logger` is registered (registered: )".to_string())
    );
}

#[test]
fn the_logger_passes_events_through() {
    let mut logger = LoggerHandler::from_params(&json!({})).expect("builds");
    let events = vec![event("e1", "a", "2014-08-01 10:00:00", &[])];
    let mut env = Environment::new(1, "t");
    assert_eq!(
        logger.handle(events.clone(), &mut env).expect("handles"),
        events
    );
    assert!(env.scratch().is_empty());
    assert_eq!(
        LoggerHandler::from_params(&json!([1]))
            .expect_err("invalid")
            .to_string(),
        "handler `logger`: invalid params: expected a mapping, found [1]"
    );
}

// ---- usage audit ----------------------------------------------------------------------------

const APB: &str = "2014-12-30 00:00:00";
const APE: &str = "2014-12-31 00:00:00";

/// An end-of-day exists of instance `inst` for 2014-12-30, with extra traits.
fn exists(id: &str, extra: &[(&str, TraitValue)]) -> Event {
    let mut traits = vec![
        ("instance_id", text("inst")),
        ("tenant_id", text("tenant")),
        ("state", text("active")),
        ("launched_at", date("2014-12-01 10:00:00")),
        ("instance_flavor_id", TraitValue::Int(2)),
        ("audit_period_beginning", date(APB)),
        ("audit_period_ending", date(APE)),
    ];
    for (name, value) in extra {
        traits.retain(|(n, _)| n != name);
        if *value != text("<absent>") {
            traits.push((name, value.clone()));
        }
    }
    event(id, usage::EXISTS, "2014-12-31 00:05:00", &traits)
}

/// An operation on instance `inst` on 2014-12-30.
fn op(id: &str, event_type: &str, extra: &[(&str, TraitValue)]) -> Event {
    let mut traits = vec![("instance_id", text("inst")), ("tenant_id", text("tenant"))];
    traits.extend(extra.iter().cloned());
    event(id, event_type, "2014-12-30 12:00:00", &traits)
}

/// (event type, error code) of each generated event.
fn verdicts(audit: &usage::UsageAudit) -> Vec<(String, Option<String>)> {
    audit
        .events
        .iter()
        .map(|e| {
            let code = match e.trait_value("error_code") {
                Some(TraitValue::Text(c)) => Some(c.clone()),
                _ => None,
            };
            (e.event_type.clone(), code)
        })
        .collect()
}

/// The `error` trait of the last generated event.
fn error_of(audit: &usage::UsageAudit) -> String {
    match audit.events.last().and_then(|e| e.trait_value("error")) {
        Some(TraitValue::Text(s)) => s.clone(),
        other => panic!("no error trait: {other:?}"),
    }
}

fn failed(code: &str) -> Vec<(String, Option<String>)> {
    vec![(FAILED.to_string(), Some(code.to_string()))]
}

#[test]
fn usage_verified_with_its_notification() {
    let events = vec![op("u1", "compute.instance.update", &[]), exists("x1", &[])];
    let audit = UsageHandler::audit(&events, 42);
    assert_eq!(verdicts(&audit), vec![(VERIFIED.to_string(), None)]);
    let verified = &audit.events[0];
    assert_eq!(
        verified.message_id,
        derived_message_id("x1", VERIFIED).to_string()
    );
    assert_eq!(verified.timestamp, events[1].timestamp);
    assert_eq!(
        verified.trait_value("stream_id"),
        Some(&TraitValue::Int(42))
    );
    assert_eq!(
        verified.trait_value("original_message_id"),
        Some(&text("x1"))
    );
    assert_eq!(verified.trait_value("instance_id"), Some(&text("inst")));
    assert_eq!(verified.trait_value("service"), Some(&text("stv3")));
    assert_eq!(
        verified.trait_value("audit_period_beginning"),
        Some(&date(APB))
    );
    assert_eq!(verified.trait_value("error"), None);
    let names: Vec<&str> = verified.traits.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "traits sorted by name");

    assert_eq!(
        audit.notifications,
        vec![json!({
            "event_type": "compute.instance.exists.verified",
            "message_id": derived_message_id("x1", VERIFIED).to_string(),
            "publisher_id": "stv3",
            "timestamp": "2014-12-31 00:05:00.000000",
            "stream_id": 42,
            "error": "None",
            "error_code": null,
            "original_message_id": "x1",
            "payload": {
                "audit_period_beginning": "2014-12-30 00:00:00",
                "audit_period_ending": "2014-12-31 00:00:00",
                "launched_at": "2014-12-01 10:00:00",
                "deleted_at": "",
                "instance_id": "inst",
                "tenant_id": "tenant",
                "display_name": "",
                "instance_type": "",
                "instance_flavor_id": 2,
                "state": "active",
                "state_description": "",
                "bandwidth": {"public": {"bw_in": 0, "bw_out": 0}},
                "image_meta": {
                    "org.openstack__1__architecture": "",
                    "org.openstack__1__os_version": "",
                    "org.openstack__1__os_distro": "",
                    "org.rackspace__1__options": "0"
                }
            }
        })]
    );
}

#[test]
fn usage_u0_operations_without_exists() {
    let audit = UsageHandler::audit(&[op("u1", "compute.instance.update", &[])], 1);
    assert_eq!(verdicts(&audit), failed("U0"));
    assert_eq!(
        error_of(&audit),
        "Notifications, but no .exists notification found."
    );
    assert_eq!(
        audit.events[0].message_id,
        derived_message_id("u1", FAILED).to_string()
    );
    assert_eq!(
        audit.notifications,
        vec![json!({
            "event_type": FAILED,
            "message_id": derived_message_id("u1", FAILED).to_string(),
            "timestamp": "2014-12-30 12:00:00.000000",
            "stream_id": 1,
            "instance_id": "inst",
            "error": "Notifications, but no .exists notification found.",
            "error_code": "U0"
        })]
    );
    let dangling = UsageHandler::audit(
        &[
            op("u1", "compute.instance.update", &[]),
            exists("x1", &[]),
            op("u2", "compute.instance.update", &[]),
        ],
        1,
    );
    assert_eq!(
        verdicts(&dangling),
        vec![
            (VERIFIED.to_string(), None),
            (FAILED.to_string(), Some("U0".to_string()))
        ]
    );
    assert!(UsageHandler::audit(&[], 1).events.is_empty());
}

#[test]
fn usage_u1_active_without_launched_at() {
    let audit = UsageHandler::audit(&[exists("x1", &[("launched_at", text("<absent>"))])], 1);
    assert_eq!(verdicts(&audit), failed("U1"));
    assert_eq!(error_of(&audit), ".exists has no launched_at value.");
}

#[test]
fn usage_u2_conflicting_fields() {
    let rebuild = op(
        "r1",
        "compute.instance.rebuild.end",
        &[
            ("launched_at", date("2014-12-01 10:00:00")),
            ("instance_flavor_id", TraitValue::Int(3)),
        ],
    );
    let audit = UsageHandler::audit(&[rebuild, exists("x1", &[])], 1);
    assert_eq!(verdicts(&audit), failed("U2"));
    assert_eq!(
        error_of(&audit),
        "Conflicting 'instance_flavor_id' values ('3' != '2')"
    );

    let deleted = [
        ("state", text("deleted")),
        ("deleted_at", date("2014-12-30 13:00:00")),
    ];
    let delete = op(
        "d1",
        "compute.instance.delete.end",
        &[
            ("launched_at", date("2014-12-01 10:00:00")),
            ("deleted_at", date("2014-12-30 13:00:01.5")),
        ],
    );
    let audit = UsageHandler::audit(&[delete, exists("x1", &deleted)], 1);
    assert_eq!(verdicts(&audit), failed("U2"));
    assert_eq!(
        error_of(&audit),
        "Conflicting 'deleted_at' values ('2014-12-30 13:00:00' != '2014-12-30 13:00:01.500000')"
    );

    let matching = op(
        "d1",
        "compute.instance.delete.end",
        &[
            ("launched_at", date("2014-12-01 10:00:00")),
            ("deleted_at", date("2014-12-30 13:00:00")),
        ],
    );
    let audit = UsageHandler::audit(&[matching, exists("x1", &deleted)], 1);
    assert_eq!(verdicts(&audit), vec![(VERIFIED.to_string(), None)]);
}

#[test]
fn usage_u3_deleted_at_but_not_deleted() {
    let audit = UsageHandler::audit(
        &[exists("x1", &[("deleted_at", date("2014-12-30 13:00:00"))])],
        1,
    );
    assert_eq!(verdicts(&audit), failed("U3"));
    assert_eq!(
        error_of(&audit),
        ".exists state not 'deleted' but .exists deleted_at is set."
    );
}

#[test]
fn usage_u4_deleted_before_launched() {
    let audit = UsageHandler::audit(
        &[exists(
            "x1",
            &[
                ("state", text("deleted")),
                ("launched_at", date("2014-12-30 02:00:00")),
                ("deleted_at", date("2014-12-30 01:00:00")),
            ],
        )],
        1,
    );
    assert_eq!(verdicts(&audit), failed("U4"));
    assert_eq!(
        error_of(&audit),
        ".exists deleted_at < .exists launched_at."
    );
}

#[test]
fn usage_u5_deleted_in_period_without_delete_event() {
    let audit = UsageHandler::audit(
        &[exists(
            "x1",
            &[
                ("state", text("deleted")),
                ("deleted_at", date("2014-12-30 13:00:00")),
            ],
        )],
        1,
    );
    assert_eq!(verdicts(&audit), failed("U5"));
    assert_eq!(
        error_of(&audit),
        ".exists deleted_at in audit period, but no matching .delete event found."
    );
    let before = UsageHandler::audit(
        &[exists(
            "x1",
            &[
                ("state", text("deleted")),
                ("deleted_at", date("2014-12-20 13:00:00")),
            ],
        )],
        1,
    );
    assert_eq!(verdicts(&before), vec![(VERIFIED.to_string(), None)]);
}

#[test]
fn usage_u6_delete_event_without_deleted_at() {
    let audit = UsageHandler::audit(
        &[
            op("d1", "compute.instance.delete.end", &[]),
            exists("x1", &[]),
        ],
        1,
    );
    assert_eq!(verdicts(&audit), failed("U6"));
    assert_eq!(
        error_of(&audit),
        ".deleted events found but .exists has no deleted_at value."
    );
}

#[test]
fn usage_u7_several_delete_events() {
    let deleted = [
        ("state", text("deleted")),
        ("deleted_at", date("2014-12-30 13:00:00")),
    ];
    let audit = UsageHandler::audit(
        &[
            op("d1", "compute.instance.delete.end", &[]),
            op("d2", "compute.instance.delete.end", &[]),
            exists("x1", &deleted),
        ],
        1,
    );
    assert_eq!(verdicts(&audit), failed("U7"));
    assert_eq!(error_of(&audit), "Multiple .delete.end events");
}

#[test]
fn usage_u8_launched_in_period_without_events() {
    let launched = [("launched_at", date("2014-12-30 01:00:00"))];
    let audit = UsageHandler::audit(&[exists("x1", &launched)], 1);
    assert_eq!(verdicts(&audit), failed("U8"));
    assert_eq!(
        error_of(&audit),
        ".exists launched_at in audit period, but no related events found."
    );
    let with_create = UsageHandler::audit(
        &[
            op("c1", "compute.instance.create.end", &[]),
            exists("x1", &launched),
        ],
        1,
    );
    assert_eq!(verdicts(&with_create), vec![(VERIFIED.to_string(), None)]);
}

#[test]
fn usage_warnings_for_a_non_end_of_day_exists_without_operations() {
    let non_eod = exists(
        "x1",
        &[
            ("audit_period_beginning", date("2014-12-30 00:00:00")),
            ("audit_period_ending", date("2014-12-30 05:00:00")),
        ],
    );
    let audit = UsageHandler::audit(
        &[op("u1", "compute.instance.update", &[]), non_eod.clone()],
        3,
    );
    assert_eq!(
        verdicts(&audit),
        vec![(WARNINGS.to_string(), None), (VERIFIED.to_string(), None)]
    );
    let warning = "Non-EOD .exists found (msg_id: x1) with no operation event.";
    assert_eq!(
        audit.events[0].trait_value("warnings"),
        Some(&text(warning))
    );
    assert_eq!(audit.notifications[0]["warnings"], json!([warning]));
    assert_eq!(audit.notifications[0]["instance_id"], json!("inst"));
    assert_eq!(
        audit.events[0].message_id,
        derived_message_id("x1", WARNINGS).to_string()
    );
    // Warnings belong to their own exists, not to later ones in the stream.
    let two = UsageHandler::audit(&[non_eod, exists("x2", &[])], 3);
    assert_eq!(
        verdicts(&two),
        vec![
            (WARNINGS.to_string(), None),
            (VERIFIED.to_string(), None),
            (VERIFIED.to_string(), None)
        ]
    );
}

#[test]
fn usage_message_ids_are_deterministic_uuid_v5() {
    // Cross-checked with Python: uuid.uuid5(UUID('0d1c6221-2ef5-40b6-898b-153d8a61ccb1'),
    // 'abc|compute.instance.exists.verified').
    assert_eq!(
        derived_message_id("abc", VERIFIED).to_string(),
        "7f23851b-9e41-5efc-8b1c-1a4d131b4a48"
    );
    assert_eq!(
        derived_message_id("abc", FAILED).to_string(),
        "0742f750-ecea-5792-81f8-64948e56620b"
    );
    assert_eq!(derived_message_id("abc", VERIFIED).get_version_num(), 5);
    let events = vec![op("u1", "compute.instance.update", &[]), exists("x1", &[])];
    assert_eq!(
        UsageHandler::audit(&events, 1),
        UsageHandler::audit(&events, 1)
    );
}

#[test]
fn the_usage_handler_returns_new_events_and_fills_the_environment() {
    let registry = HandlerRegistry::default();
    let config = PipelineConfig::parse(
        "audit: [logger, usage]\n",
        Path::new("p.yaml"),
        &sandbox_handlers(),
    )
    .expect("parses");
    let mut pipeline =
        Pipeline::build(config.get("audit").expect("defined"), &registry).expect("builds");
    let mut env = Environment::new(5, "instance_usage");
    let events = vec![exists("x1", &[]), op("u1", "compute.instance.update", &[])];
    let outcome = pipeline.run(events, &mut env);
    assert!(outcome.succeeded());
    let types: Vec<&str> = outcome
        .new_events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [VERIFIED],
        "sorted by time, the update precedes the exists"
    );
    let notifications = env
        .get(NOTIFICATIONS_KEY)
        .and_then(Value::as_array)
        .expect("list");
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0]["stream_id"], json!(5));
    assert_eq!(
        notifications[0]["message_id"],
        json!(outcome.new_events[0].message_id)
    );
}

#[test]
fn a_pipeline_reads_traits_when_any_of_its_handlers_does() {
    let registry = HandlerRegistry::with_builtins();
    let config = parse("logs: [logger]\nusage: [logger, usage]\n").expect("parses");
    let build = |name: &str| {
        Pipeline::build(config.get(name).expect("defined"), &registry).expect("builds")
    };
    assert!(!build("logs").reads_traits(), "the logger reads no traits");
    assert!(build("usage").reads_traits(), "usage reads them");
}
