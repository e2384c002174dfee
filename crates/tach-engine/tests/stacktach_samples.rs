//! End to end over real data: the sample Nova notifications, distilled with StackTach's sandbox
//! event definitions, go through the sandbox's daily usage trigger in a dry run; every stream
//! that fires runs the sandbox fire pipeline's built-in handlers (logger, usage).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use tach_distiller::{Distiller, Event, TraitValue};
use tach_engine::pipeline::{Environment, HandlerRegistry, Pipeline, PipelineConfig};
use tach_engine::trigger::{DryRun, load_triggers};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The sample notifications as events, in time order.
fn sample_events() -> Vec<Event> {
    let definitions = shared().join("stacktach/sandbox/event_definitions.yaml");
    let distiller = Distiller::from_file(&definitions, false).expect("sandbox definitions");
    let text = std::fs::read_to_string(shared().join("samples/nova-notifications.jsonl"))
        .expect("samples");
    let mut events: Vec<Event> = text
        .lines()
        .filter_map(|line| distiller.distill_bytes(line.as_bytes()).ok().flatten())
        .collect();
    events.sort_by_key(|e| e.timestamp);
    events
}

#[test]
fn sample_notifications_through_the_sandbox_usage_trigger() {
    let events = sample_events();
    assert!(events.len() > 700, "{} events", events.len());
    let triggers = load_triggers(&shared().join("stacktach/sandbox/triggers.yaml"))
        .expect("triggers")
        .triggers;
    let mut run = DryRun::new(triggers.clone());
    let mut members: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for event in &events {
        for matched in run.add(event).expect("add") {
            members
                .entry(matched.stream)
                .or_default()
                .push(event.clone());
        }
    }
    let streams = run.streams();
    let fired: Vec<_> = streams.iter().filter(|s| s.fire).collect();
    assert_eq!((streams.len(), fired.len()), (51, 39));
    for stream in &streams {
        assert_eq!(stream.events as usize, members[&stream.stream].len());
    }

    // The sandbox pipeline's built-in handlers (notabene is registered by the publisher).
    let handlers: BTreeMap<String, String> = [("logger", "logger"), ("usage", "usage")]
        .map(|(a, b)| (a.into(), b.into()))
        .into();
    let pipelines = PipelineConfig::parse(
        "fire: [logger, usage]\n",
        Path::new("pipelines.yaml"),
        &handlers,
    )
    .expect("pipelines");
    let registry = HandlerRegistry::with_builtins();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for stream in fired {
        let mut pipeline =
            Pipeline::build(pipelines.get("fire").expect("defined"), &registry).expect("builds");
        let mut env = Environment::new(stream.stream as i64, &stream.trigger);
        let outcome = pipeline.run(members[&stream.stream].clone(), &mut env);
        assert!(outcome.succeeded());
        let notifications = env.get("usage_notifications").and_then(|v| v.as_array());
        assert_eq!(notifications.map(Vec::len), Some(outcome.new_events.len()));
        for event in &outcome.new_events {
            let code = match event.trait_value("error_code") {
                Some(TraitValue::Text(code)) => format!(" {code}"),
                _ => String::new(),
            };
            *verdicts
                .entry(format!("{}{code}", event.event_type))
                .or_default() += 1;
            assert!(ids.insert(event.message_id.clone()), "unique message ids");
            // The audit's own events never re-enter the usage streams.
            assert!(
                run.add(event).expect("add").is_empty(),
                "{}",
                event.event_type
            );
        }
    }
    let expected: BTreeMap<String, usize> = [
        ("compute.instance.exists.verified", 36),
        ("compute.instance.exists.failed U2", 6),
        ("compute.instance.exists.failed U6", 3),
        ("compute.instance.exists.warnings", 6),
    ]
    .map(|(k, n)| (k.to_string(), n))
    .into();
    assert_eq!(verdicts, expected);
}
