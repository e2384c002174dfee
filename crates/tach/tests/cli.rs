//! End-to-end tests of the `tach distill`, `tach timex`, `tach notigen` and `tach triggers test`
//! commands, run as the real binary.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The repository root (config/ lives there).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `tach ARGS` with `stdin` as standard input.
fn tach(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tach starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit before reading everything (e.g. on invalid definitions).
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().expect("tach runs");
    writer.join().expect("stdin writer");
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

fn lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

const DEFINITIONS: &str = "config/event_definitions.yaml";

fn notification(event_type: &str, message_id: &str) -> Value {
    serde_json::json!({
        "event_type": event_type,
        "message_id": message_id,
        "timestamp": "2026-03-01 12:00:00.5",
        "publisher_id": "compute.host-7",
        "_context_request_id": "req-1",
        "payload": {
            "tenant_id": "t1", "instance_id": "i1", "memory_mb": 512,
            "launched_at": "2026-02-28 10:00:00",
            "image_meta": {"org.openstack__1__architecture": "x64"}
        }
    })
}

#[test]
fn distill_writes_one_line_per_input_line() {
    let bare = notification("compute.instance.create.end", "m1").to_string();
    let wrapped = serde_json::json!({
        "oslo.version": "2.0",
        "oslo.message": notification("compute.instance.update", "m2").to_string(),
    })
    .to_string();
    let unmatched = notification("image.upload", "m3").to_string();
    let input =
        format!("{bare}\n{wrapped}\n{unmatched}\nnot json\n[1,2]\n{{\"event_type\": \"x\"}}\n\n");
    let output = tach(&["distill", "--definitions", DEFINITIONS], input.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let out = lines(&output);
    assert_eq!(out.len(), 7, "one output line per input line: {out:?}");

    let first = &out[0];
    assert_eq!(first["message_id"], "m1");
    assert_eq!(first["event_type"], "compute.instance.create.end");
    assert_eq!(first["timestamp"], "2026-03-01T12:00:00.500000Z");
    assert_eq!(first["tenant_id"], "t1");
    assert_eq!(first["memory_mb"], 512);
    assert_eq!(first["launched_at"], "2026-02-28T10:00:00.000000Z");
    assert_eq!(first["host"], "host-7");
    assert_eq!(first["os_architecture"], "x64");
    let raw = stdout(&output);
    assert!(
        raw.starts_with(
            r#"{"message_id":"m1","event_type":"compute.instance.create.end","timestamp":"#
        ),
        "fixed leading keys: {raw}"
    );

    assert_eq!(out[1]["message_id"], "m2", "the oslo envelope is unwrapped");
    assert_eq!(out[2], Value::Null, "no definition matches image.upload");
    for (line, needle) in [
        (3, "not valid JSON"),
        (4, "not a JSON object"),
        (5, "message_id"),
    ] {
        let error = out[line]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("line {line}"));
        assert!(error.contains(needle), "line {line}: {error}");
    }
    assert!(
        out[6]["error"].is_string(),
        "an empty line is reported, not skipped"
    );

    let summary = stderr(&output);
    assert!(
        summary.contains("read 7, distilled 2, dropped 1, errors 4"),
        "{summary}"
    );
    assert!(
        summary.contains("<stdin>:4: not valid JSON"),
        "poison lines are located: {summary}"
    );
}

#[test]
fn distill_catch_all_keeps_unmatched_notifications() {
    let input = notification("image.upload", "m3").to_string();
    let output = tach(
        &["distill", "--definitions", DEFINITIONS, "--catch-all"],
        input.as_bytes(),
    );
    let out = lines(&output);
    assert_eq!(out[0]["event_type"], "image.upload");
    assert_eq!(out[0]["tenant_id"], "t1");
    assert_eq!(out[0]["service"], "compute.host-7");
    assert!(
        out[0].get("memory_mb").is_none(),
        "only the default traits: {}",
        out[0]
    );
}

#[test]
fn distill_rejects_invalid_definitions_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("tach-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad_definitions.yaml");
    std::fs::write(
        &path,
        "- event_type: compute.*\n  traits:\n    memory_mb:\n      type: integer\n      fields: payload.memory_mb\n",
    )
    .expect("write definitions");
    let path_arg = path.to_str().expect("utf-8 path");
    let output = tach(&["distill", "--definitions", path_arg], b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("bad_definitions.yaml"), "{message}");
    assert!(message.contains("definition #0"), "{message}");
    assert!(message.contains("memory_mb"), "{message}");
    assert!(message.contains("integer"), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(stdout(&output).is_empty());
}

#[test]
fn notigen_two_days_distil_into_every_type_with_audit_periods() {
    let generated = tach(&["notigen", "--seed", "1", "--duration", "2d"], b"");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let notifications = lines(&generated);
    let output = tach(
        &["distill", "--definitions", DEFINITIONS],
        &generated.stdout,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let events = lines(&output);
    assert_eq!(events.len(), notifications.len());

    let generated_types: BTreeSet<&str> = notifications
        .iter()
        .filter_map(|n| n["event_type"].as_str())
        .collect();
    let mut distilled: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &events {
        let event_type = event["event_type"]
            .as_str()
            .expect("every line is an event");
        *distilled.entry(event_type).or_default() += 1;
    }
    assert!(generated_types.len() >= 30, "{generated_types:?}");
    for event_type in &generated_types {
        assert!(
            distilled.contains_key(event_type),
            "{event_type} produced no event"
        );
    }
    let exists: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "compute.instance.exists")
        .collect();
    assert!(!exists.is_empty());
    for event in exists {
        assert!(event["audit_period_beginning"].is_string(), "{event}");
        assert!(event["audit_period_ending"].is_string(), "{event}");
        assert!(event["instance_id"].is_string(), "{event}");
    }
}

#[test]
fn notigen_is_deterministic_and_honours_count_and_envelope() {
    let once = tach(&["notigen", "--seed", "9", "--count", "500"], b"");
    let twice = tach(&["notigen", "--seed", "9", "--count", "500"], b"");
    assert!(once.status.success());
    assert_eq!(once.stdout, twice.stdout, "same seed, same bytes");
    assert_eq!(lines(&once).len(), 500);
    let other = tach(&["notigen", "--seed", "10", "--count", "500"], b"");
    assert_ne!(once.stdout, other.stdout);

    let wrapped = tach(
        &[
            "notigen",
            "--seed",
            "9",
            "--count",
            "500",
            "--envelope",
            "oslo",
        ],
        b"",
    );
    let first = &lines(&wrapped)[0];
    assert_eq!(first["oslo.version"], "2.0");
    let bare_events = tach(&["distill", "--definitions", DEFINITIONS], &once.stdout);
    let wrapped_events = tach(&["distill", "--definitions", DEFINITIONS], &wrapped.stdout);
    assert_eq!(
        bare_events.stdout, wrapped_events.stdout,
        "the envelope changes nothing"
    );
}

#[test]
fn notigen_rejects_bad_options_naming_them() {
    let output = tach(&["notigen", "--duration", "2x"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--duration"),
        "{}",
        stderr(&output)
    );
    let output = tach(&["notigen", "--start", "yesterday"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--start"), "{}", stderr(&output));
}

#[test]
fn timex_prints_ranges_timestamps_and_membership() {
    let range = tach(
        &[
            "timex",
            "day($launched_at) @ 6h",
            "--var",
            "launched_at=2026-03-01 03:00:00",
        ],
        b"",
    );
    assert!(range.status.success(), "{}", stderr(&range));
    assert_eq!(
        stdout(&range).trim(),
        r#"{"begin": "2026-02-28T06:00:00.000000Z", "end": "2026-03-01T06:00:00.000000Z"}"#
    );
    let timestamp = tach(
        &["timex", "$last + 1mo", "--var", "last=2024-01-31T10:00:00Z"],
        b"",
    );
    assert_eq!(
        stdout(&timestamp).trim(),
        r#"{"timestamp": "2024-02-29T10:00:00.000000Z"}"#
    );
    let now = tach(&["timex", "day", "--now", "2026-05-05T05:05:05Z"], b"");
    assert_eq!(
        stdout(&now).trim(),
        r#"{"begin": "2026-05-05T00:00:00.000000Z", "end": "2026-05-06T00:00:00.000000Z"}"#
    );
    for (point, expected) in [
        ("2026-03-05T23:59:59Z", "true"),
        ("2026-03-06T00:00:00Z", "false"),
    ] {
        let contains = tach(
            &[
                "timex",
                "day($x)",
                "--var",
                "x=2026-03-05T12:00:00Z",
                "--contains",
                point,
            ],
            b"",
        );
        assert_eq!(stdout(&contains).trim(), expected, "{point}");
    }
}

#[test]
fn timex_errors_exit_2_with_column_or_variable() {
    let parse = tach(&["timex", "day + ("], b"");
    assert_eq!(parse.status.code(), Some(2));
    assert!(stderr(&parse).contains("column 7"), "{}", stderr(&parse));
    let missing = tach(&["timex", "$foo + 1d"], b"");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("`$foo` is not defined"),
        "{}",
        stderr(&missing)
    );
    let bad_var = tach(&["timex", "$x", "--var", "x=soon"], b"");
    assert_eq!(bad_var.status.code(), Some(2));
    assert!(stderr(&bad_var).contains("--var x"), "{}", stderr(&bad_var));
}

#[test]
fn triggers_test_reports_streams_without_a_database() {
    let event = |id: &str, event_type: &str, ts: &str, extra: &str| {
        format!(
            r#"{{"message_id": "{id}", "event_type": "{event_type}", "timestamp": "{ts}", "instance_id": "i1", "request_id": "r-{id}"{extra}}}"#
        )
    };
    let input = [
        event("a", "compute.instance.update", "2026-03-01T10:00:00.000000Z", ""),
        "null".to_string(),
        event(
            "b",
            "compute.instance.exists",
            "2026-03-02T00:00:10.000000Z",
            r#", "audit_period_beginning": "2026-03-01T00:00:00.000000Z", "audit_period_ending": "2026-03-02T00:00:00.000000Z""#,
        ),
    ]
    .join("\n");
    let output = tach(
        &["triggers", "test", "--definitions", "config/triggers.yaml"],
        input.as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = lines(&output);
    assert_eq!(out[0]["message_id"], "a");
    assert_eq!(out[1]["message_id"], "b", "null lines are skipped");
    let usage = |line: &Value| {
        line["matched"]
            .as_array()
            .expect("matched list")
            .iter()
            .find(|m| m["trigger"] == "instance_usage")
            .cloned()
            .expect("the usage trigger matched")
    };
    let (first, second) = (usage(&out[0]), usage(&out[1]));
    assert_eq!(
        first["stream"], second["stream"],
        "the exists joins its audit day's stream"
    );
    assert_eq!(
        first["distinguishing_traits"]["timestamp"],
        serde_json::json!({"begin": "2026-03-01T00:00:00.000000Z", "end": "2026-03-02T00:00:00.000000Z"})
    );
    let stream = out
        .iter()
        .find(|l| l.get("events").is_some() && l["stream"] == first["stream"])
        .expect("a stream line");
    assert_eq!(stream["events"], 2);
    assert_eq!(stream["fire"], true);
    assert_eq!(stream["fire_timestamp"], "2026-03-02T00:00:10.000000Z");
}

#[test]
fn triggers_test_rejects_invalid_definitions_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("tach-cli-trig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("triggers.yaml");
    std::fs::write(&path, "- name: broken\n  distinguished_by: [instance_id]\n").expect("write");
    let output = tach(
        &[
            "triggers",
            "test",
            "--definitions",
            path.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("triggers.yaml") && message.contains("`broken`"),
        "{message}"
    );
    assert!(message.contains("expiration"), "{message}");
}
