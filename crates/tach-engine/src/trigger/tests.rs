//! Trigger behaviour (DESIGN §5): criteria, definitions and their errors, distinguishing
//! values and keys, fire and expiry bookkeeping, debug counters and the dry run.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tach_distiller::TraitValue;

use super::*;
use crate::testutil::{date, dt, event, stacktach_dir, text};

/// Parses one trigger from YAML text (a one-element list), failing the test on error.
fn trigger(yaml: &str) -> TriggerDefinition {
    let file = parse_triggers(yaml, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.triggers.len(), 1);
    file.triggers.into_iter().next().expect("one trigger")
}

/// The error message of loading `yaml`.
fn load_error(yaml: &str) -> String {
    match parse_triggers(yaml, Path::new("t.yaml")) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The warnings of loading `yaml`.
fn load_warnings(yaml: &str) -> Vec<String> {
    parse_triggers(yaml, Path::new("t.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .warnings
}

/// A trigger with one match criterion written in YAML flow style.
fn with_criterion(criterion: &str) -> TriggerDefinition {
    trigger(&format!(
        "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  \
         fire_criteria: [{{event_type: test.thing}}]\n  match_criteria: [{criterion}]\n"
    ))
}

const SANDBOX_LIKE: &str = r#"
- name: test_trigger
  debug_level: 2
  distinguished_by:
  - instance_id
  - timestamp: "day"
  expiration: "$last + 2d"
  fire_pipeline: "test_fire_pipeline"
  expire_pipeline: "test_expire_pipeline"
  match_criteria:
  - event_type:
    - compute.instance.*
    - "!compute.instance.exists"
    - "!compute.instance.exists.failed"
    - "!compute.instance.exists.warnings"
    - "!compute.instance.exists.verified"
  - event_type: compute.instance.exists
    map_distinguished_by:
      timestamp: audit_period_beginning
  fire_criteria:
  - event_type: compute.instance.exists
    traits:
      audit_period_ending:
        datetime: $audit_period_beginning + 1d
"#;

// ---- criteria -------------------------------------------------------------------------------

#[test]
fn event_type_globs_include_and_exclude() {
    let t = with_criterion(r#"{event_type: ["test.foo.*", "!test.wakka.*"]}"#);
    let ts = "2014-08-01 10:00:00";
    assert_eq!(t.matches(&event("1", "test.foo.bar", ts, &[])), Some(0));
    assert_eq!(t.matches(&event("2", "test.wakka.zazz", ts, &[])), None);
    assert_eq!(t.matches(&event("3", "test.boingy", ts, &[])), None);
}

#[test]
fn only_exclusions_match_everything_else_and_no_event_type_matches_all() {
    let t = with_criterion(r#"{event_type: "!test.foo.bar"}"#);
    let ts = "2014-08-01 10:00:00";
    assert_eq!(t.matches(&event("1", "anything.else", ts, &[])), Some(0));
    assert_eq!(t.matches(&event("2", "test.foo.bar", ts, &[])), None);
    let all = with_criterion("{}");
    assert_eq!(all.matches(&event("3", "whatever", ts, &[])), Some(0));
}

#[test]
fn matches_returns_the_first_accepting_criterion() {
    let t = with_criterion("{event_type: 'test.*'}, {event_type: 'other.*'}");
    let ts = "2014-08-01 10:00:00";
    assert_eq!(t.matches(&event("1", "test.thing", ts, &[])), Some(0));
    assert_eq!(t.matches(&event("2", "other.thing", ts, &[])), Some(1));
    assert_eq!(t.matches(&event("3", "nope", ts, &[])), None);
}

#[test]
fn timestamp_window_uses_the_events_datetime_traits() {
    let t = with_criterion("{timestamp: 'day($launched_at)'}");
    let launched = [("launched_at", date("2014-08-01 01:02:03.000004"))];
    let same_day = event("1", "test.thing", "2014-08-01 17:16:15.000014", &launched);
    let next_day = event("2", "test.thing", "2014-08-02 17:16:15.000014", &launched);
    let no_trait = event("3", "test.thing", "2014-08-02 17:16:15.000014", &[]);
    assert_eq!(t.matches(&same_day), Some(0));
    assert_eq!(t.matches(&next_day), None);
    assert_eq!(t.matches(&no_trait), None);
    let criteria = &t.match_criteria[0];
    assert_eq!(
        criteria.check(&next_day),
        Err(MismatchReason::TimestampOutOfRange)
    );
    assert_eq!(
        criteria.check(&no_trait),
        Err(MismatchReason::TimestampVariableMissing)
    );
}

#[test]
fn trait_tests_as_in_winchester() {
    let t = with_criterion(
        r#"{traits: {some_trait: test, launched_at: {datetime: day}, memory_mb: {int: "> 2048"},
            test_weight: {float: "< 4.02"}, other_trait: {string: "text here"}}}"#,
    );
    let ts = "2014-08-01 17:16:15.000014";
    let base = |overrides: &[(&str, TraitValue)]| {
        let mut traits = vec![
            ("launched_at", date("2014-08-01 01:02:03.000004")),
            ("some_trait", text("test")),
            ("other_trait", text("text here")),
            ("memory_mb", TraitValue::Int(4096)),
            ("test_weight", TraitValue::Float(2.5)),
        ];
        for (name, value) in overrides {
            traits.retain(|(n, _)| n != name);
            if *value != text("<absent>") {
                traits.push((name, value.clone()));
            }
        }
        event("e", "test.thing", ts, &traits)
    };
    let criteria = &t.match_criteria[0];
    assert_eq!(criteria.check(&base(&[])), Ok(()));
    assert_eq!(
        criteria.check(&base(&[("some_trait", text("foo"))])),
        Err(MismatchReason::TraitMismatch)
    );
    assert_eq!(
        criteria.check(&base(&[("some_trait", text("<absent>"))])),
        Err(MismatchReason::TraitMissing)
    );
    assert_eq!(
        criteria.check(&base(&[("launched_at", date("2014-08-02 01:02:03"))])),
        Err(MismatchReason::TraitNotInRange)
    );
    assert_eq!(
        criteria.check(&base(&[("memory_mb", TraitValue::Int(1024))])),
        Err(MismatchReason::TraitMismatch)
    );
    assert_eq!(
        criteria.check(&base(&[("test_weight", TraitValue::Float(7.5))])),
        Err(MismatchReason::TraitMismatch)
    );
}

#[test]
fn numeric_comparisons_including_beyond_operators() {
    let cases: &[(&str, i64, bool)] = &[
        ("'3'", 3, true),
        ("'3'", 5, false),
        ("'> 3'", 3, false),
        ("'> 3'", 5, true),
        ("'< 3'", 1, true),
        ("'< 3'", 3, false),
        ("'>= 3'", 3, true),
        ("'<= 3'", 4, false),
        ("'!= 3'", 4, true),
        ("'!= 3'", 3, false),
        ("'>3'", 4, true),
        ("'= 3'", 3, true),
        ("3", 3, true),
    ];
    for (spec, value, expected) in cases {
        let t = with_criterion(&format!("{{traits: {{n: {{int: {spec}}}}}}}"));
        let e = event(
            "1",
            "x",
            "2014-08-01 00:00:00",
            &[("n", TraitValue::Int(*value))],
        );
        assert_eq!(
            t.matches(&e).is_some(),
            *expected,
            "int {spec} against {value}"
        );
    }
    let t = with_criterion("{traits: {n: {int: '> 3'}}}");
    let e = event("1", "x", "2014-08-01 00:00:00", &[("n", text("booga"))]);
    assert_eq!(t.matches(&e), None, "text never satisfies a numeric test");
    let f = with_criterion("{traits: {w: {float: '2.75'}}}");
    let e = event(
        "1",
        "x",
        "2014-08-01 00:00:00",
        &[("w", TraitValue::Float(2.75))],
    );
    assert_eq!(f.matches(&e), Some(0));
    let e = event(
        "1",
        "x",
        "2014-08-01 00:00:00",
        &[("w", TraitValue::Float(3.5))],
    );
    assert_eq!(f.matches(&e), None);
}

#[test]
fn constants_compare_like_python() {
    let t = with_criterion("{traits: {n: 3, state: active, at: '2014-08-01T10:00:00Z'}}");
    let e = |n: TraitValue| {
        event(
            "1",
            "x",
            "2014-08-01 00:00:00",
            &[
                ("n", n),
                ("state", text("active")),
                ("at", date("2014-08-01 10:00:00")),
            ],
        )
    };
    assert_eq!(t.matches(&e(TraitValue::Int(3))), Some(0));
    assert_eq!(t.matches(&e(TraitValue::Float(3.0))), Some(0), "3 == 3.0");
    assert_eq!(t.matches(&e(text("3"))), None, "'3' != 3");
    let as_text = with_criterion("{traits: {state: {text: active}}}");
    assert_eq!(as_text.matches(&e(TraitValue::Int(3))), Some(0));
}

#[test]
fn datetime_membership_of_a_timestamp_expression() {
    let t = trigger(SANDBOX_LIKE);
    let exists = |ending: &str| {
        event(
            "1",
            "compute.instance.exists",
            "2014-08-02 00:05:00",
            &[
                ("instance_id", text("i-1")),
                ("audit_period_beginning", date("2014-08-01 00:00:00")),
                ("audit_period_ending", date(ending)),
            ],
        )
    };
    let fire = &t.fire_criteria[0];
    assert_eq!(fire.check(&exists("2014-08-02 00:00:00")), Ok(()));
    assert_eq!(
        fire.check(&exists("2014-08-01 05:00:00")),
        Err(MismatchReason::TraitNotInRange)
    );
    let no_beginning = event(
        "2",
        "compute.instance.exists",
        "2014-08-02 00:05:00",
        &[("audit_period_ending", date("2014-08-02 00:00:00"))],
    );
    assert_eq!(
        fire.check(&no_beginning),
        Err(MismatchReason::TraitVariableMissing)
    );
}

#[test]
fn invalid_trait_tests_are_errors_naming_file_trigger_and_reason() {
    let base = "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  fire_criteria: []\n";
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria:\n  - traits:\n      memory_mb:\n        numeric: '> 4096'\n"
        )),
        "t.yaml: trigger `t`: match_criteria[0]: trait `memory_mb`: unknown criterion type \
         `numeric` (did you mean `int` or `float`? known types: int, float, datetime, string, text)"
    );
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria: [{{traits: {{n: {{innt: 5}}}}}}]\n"
        )),
        "t.yaml: trigger `t`: match_criteria[0]: trait `n`: unknown criterion type `innt` \
         (did you mean `int`? known types: int, float, datetime, string, text)"
    );
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria: [{{traits: {{n: {{int: zazz}}}}}}]\n"
        )),
        "t.yaml: trigger `t`: match_criteria[0]: trait `n`: `zazz` is not an int comparison \
         (e.g. \"> 4096\", \"<= 2\", \"5\")"
    );
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria: [{{traits: {{n: {{int: ''}}}}}}]\n"
        )),
        "t.yaml: trigger `t`: match_criteria[0]: trait `n`: `` is not an int comparison \
         (e.g. \"> 4096\", \"<= 2\", \"5\")"
    );
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria: [{{traits: {{n: {{int: 1, float: 2}}}}}}]\n"
        )),
        "t.yaml: trigger `t`: match_criteria[0]: trait `n`: exactly one test type is allowed \
         (found 2: float, int)"
    );
    assert_eq!(
        load_error(&format!(
            "{base}  match_criteria: [{{traits: {{d: {{datetime: '$x +'}}}}}}]\n"
        )),
        format!(
            "t.yaml: trigger `t`: match_criteria[0]: trait `d`: datetime expression `$x +`: {}",
            tach_timex::TimeExpression::parse("$x +").expect_err("invalid")
        )
    );
}

// ---- definitions ----------------------------------------------------------------------------

#[test]
fn required_keys_and_defaults() {
    let t = trigger(
        "- name: test_trigger\n  expiration: $last + 1d\n  fire_pipeline: test_pipeline\n  \
         fire_criteria: [{event_type: test.thing}]\n  match_criteria: [{event_type: test.*}]\n",
    );
    assert_eq!(t.name, "test_trigger");
    assert!(t.distinguished_by.is_empty());
    assert_eq!(t.fire_delay, Duration::ZERO);
    assert_eq!(t.debug_level, 0);
    assert_eq!(t.fire_pipeline.as_deref(), Some("test_pipeline"));
    assert_eq!(t.expire_pipeline, None);
    assert_eq!(t.match_criteria.len(), 1);
    assert_eq!(t.fire_criteria.len(), 1);
    assert_eq!(t.fire_criteria[0].number, 1);
    assert_eq!(t.expiration.text(), "$last + 1d");
}

#[test]
fn invalid_definitions_name_file_trigger_and_reason() {
    let ok_rest = "  expiration: $last + 1d\n  fire_pipeline: p\n  fire_criteria: []\n  \
                   match_criteria: [{event_type: a}]\n";
    assert_eq!(
        load_error(&format!("- debug_level: 1\n{ok_rest}")),
        "t.yaml: trigger #1: missing required key `name`"
    );
    assert_eq!(
        load_error(&format!("- name: a\n{ok_rest}- name: ''\n{ok_rest}")),
        "t.yaml: trigger #2: `name` is empty"
    );
    assert_eq!(
        load_error(
            "- name: t\n  fire_pipeline: p\n  fire_criteria: []\n  match_criteria: [{event_type: a}]\n"
        ),
        "t.yaml: trigger `t`: missing required key `expiration`"
    );
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  fire_criteria: []\n"
        ),
        "t.yaml: trigger `t`: missing required key `match_criteria`"
    );
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  fire_criteria: []\n  \
             match_criteria: []\n"
        ),
        "t.yaml: trigger `t`: `match_criteria` is empty: the trigger would match no event"
    );
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $last + 1d\n  fire_criteria: []\n  \
             match_criteria: [{event_type: a}]\n"
        ),
        "t.yaml: trigger `t`: at least one of `fire_pipeline` or `expire_pipeline` is required"
    );
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  \
             match_criteria: [{event_type: a}]\n"
        ),
        "t.yaml: trigger `t`: missing required key `fire_criteria`"
    );
    assert_eq!(
        load_error(&format!("- name: t\n{ok_rest}- name: t\n{ok_rest}")),
        "t.yaml: trigger `t`: defined twice (trigger #1 and #2)"
    );
    assert_eq!(
        load_error("name: t\n"),
        "t.yaml: the file: expected a list of trigger definitions, found a mapping"
    );
}

#[test]
fn unparsable_expressions_report_their_column() {
    let parse_error = tach_timex::TimeExpression::parse("$last ++ 1d").expect_err("invalid");
    assert!(
        parse_error.to_string().starts_with("column "),
        "{parse_error}"
    );
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $last ++ 1d\n  fire_pipeline: p\n  fire_criteria: []\n  \
             match_criteria: [{event_type: a}]\n"
        ),
        format!("t.yaml: trigger `t`: `expiration` `$last ++ 1d`: {parse_error}")
    );
    let dist_error = tach_timex::TimeExpression::parse("dya(").expect_err("invalid");
    assert_eq!(
        load_error(
            "- name: t\n  distinguished_by: [{timestamp: 'dya('}]\n  expiration: $last + 1d\n  \
             fire_pipeline: p\n  fire_criteria: []\n  match_criteria: [{event_type: a}]\n"
        ),
        format!(
            "t.yaml: trigger `t`: `distinguished_by`: `timestamp` expression `dya(`: {dist_error}"
        )
    );
    let missing = tach_timex::TimeExpression::parse("$end + 1d")
        .expect("valid")
        .evaluate_at(&(), dt("2014-01-01 00:00:00"))
        .expect_err("no $end");
    assert_eq!(
        load_error(
            "- name: t\n  expiration: $end + 1d\n  fire_pipeline: p\n  fire_criteria: []\n  \
             match_criteria: [{event_type: a}]\n"
        ),
        format!(
            "t.yaml: trigger `t`: `expiration` `$end + 1d`: {missing} (only $first and $last are \
             available)"
        )
    );
}

#[test]
fn unknown_keys_warn_with_the_nearest_known_key() {
    let warnings = load_warnings(
        "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  expire_pipline: q\n  \
         fire_criteria: []\n  match_criteria:\n  - event_type: a\n    map_distingushed_by: {x: y}\n  \
         load_criteria: []\n  colour: blue\n",
    );
    assert_eq!(
        warnings,
        vec![
            "t.yaml: trigger `t`: unknown key `colour` (known: name, debug_level, distinguished_by, \
             expiration, fire_pipeline, expire_pipeline, fire_delay, match_criteria, \
             fire_criteria, load_criteria); ignored",
            "t.yaml: trigger `t`: unknown key `expire_pipline` (did you mean `expire_pipeline`?); \
             ignored",
            "t.yaml: trigger `t`: `load_criteria` is not used by tach; ignored",
            "t.yaml: trigger `t`: match_criteria[0]: unknown key `map_distingushed_by` (did you \
             mean `map_distinguished_by`?); ignored",
        ]
    );
}

#[test]
fn keys_without_effect_warn() {
    let warnings = load_warnings(
        "- name: t\n  distinguished_by: [instance_id]\n  expiration: $last + 1d\n  \
         fire_pipeline: p\n  fire_criteria: [{event_type: a, map_distinguished_by: {instance_id: x}}]\n  \
         match_criteria: [{event_type: a, number: 2, map_distinguished_by: {tenant: x}}]\n",
    );
    assert_eq!(
        warnings,
        vec![
            "t.yaml: trigger `t`: match_criteria[0]: `number` only applies to fire criteria; ignored",
            "t.yaml: trigger `t`: match_criteria[0]: map_distinguished_by maps `tenant`, which is \
             not in distinguished_by; ignored",
            "t.yaml: trigger `t`: fire_criteria[0]: `map_distinguished_by` only applies to match \
             criteria; ignored",
        ]
    );
}

#[test]
fn stacktach_trigger_files_load_unchanged() {
    let sandbox = load_triggers(&stacktach_dir().join("sandbox/triggers.yaml")).expect("sandbox");
    assert!(sandbox.warnings.is_empty(), "{:?}", sandbox.warnings);
    let t = &sandbox.triggers[0];
    assert_eq!(t.name, "test_trigger");
    assert_eq!(t.debug_level, 2);
    assert_eq!(t.distinguished_by.len(), 2);
    assert_eq!(t.distinguished_by[1].name, "timestamp");
    assert_eq!(
        t.distinguished_by[1]
            .expression
            .as_ref()
            .map(Expression::text),
        Some("day")
    );
    assert_eq!(
        t.match_criteria[1].source_of("timestamp"),
        "audit_period_beginning"
    );
    assert_eq!(t.fire_pipeline.as_deref(), Some("test_fire_pipeline"));

    let etc = load_triggers(&stacktach_dir().join("winchester-etc/triggers.yaml")).expect("etc");
    assert_eq!(etc.triggers[0].name, "test_trigger");
    let file = stacktach_dir().join("winchester-etc/triggers.yaml");
    assert_eq!(
        etc.warnings,
        vec![format!(
            "{}: trigger `test_trigger`: match_criteria[1]: unknown key `map_distingushed_by` \
             (did you mean `map_distinguished_by`?); ignored",
            file.display()
        )]
    );
    // The misspelled mapping is ignored, as in StackTach: exists events use their own time.
    assert_eq!(
        etc.triggers[0].match_criteria[1].source_of("timestamp"),
        "timestamp"
    );
}

// ---- distinguishing values ------------------------------------------------------------------

#[test]
fn distinguishing_values_plain_timex_and_mapped() {
    let t = trigger(SANDBOX_LIKE);
    let update = event(
        "1",
        "compute.instance.update",
        "2014-08-01 20:04:23.000444",
        &[("instance_id", text("foo"))],
    );
    let criterion = t.matches(&update).expect("matches");
    let values = t.distinguishing_values(&update, criterion).expect("values");
    let day = tach_timex::TimeRange::new(dt("2014-08-01 00:00:00"), dt("2014-08-02 00:00:00"));
    assert_eq!(
        values.as_slice(),
        &[
            ("instance_id".to_string(), DistValue::Text("foo".into())),
            ("timestamp".to_string(), DistValue::Range(day)),
        ]
    );

    let exists = event(
        "2",
        "compute.instance.exists",
        "2014-08-02 00:05:00",
        &[
            ("instance_id", text("foo")),
            ("audit_period_beginning", date("2014-08-01 00:00:00")),
            ("audit_period_ending", date("2014-08-02 00:00:00")),
        ],
    );
    assert_eq!(t.matches(&exists), Some(1));
    let mapped = t.match_event(&exists, None).expect("values");
    assert_eq!(mapped, values, "the exists lands in the day it audits");
    assert_eq!(mapped.key(), values.key());

    let no_instance = event("3", "compute.instance.update", "2014-08-01 20:00:00", &[]);
    assert_eq!(t.matches(&no_instance), Some(0));
    assert_eq!(t.distinguishing_values(&no_instance, 0), None);
    let no_source = event(
        "4",
        "compute.instance.exists",
        "2014-08-02 00:05:00",
        &[("instance_id", text("foo"))],
    );
    assert_eq!(
        t.match_event(&no_source, None),
        None,
        "mapped source missing"
    );
}

#[test]
fn plain_distinguishing_traits_keep_their_type() {
    let t = trigger(
        "- name: t\n  distinguished_by: [flavor, weight, launched_at]\n  expiration: $last + 1d\n  \
         fire_pipeline: p\n  fire_criteria: []\n  match_criteria: [{}]\n",
    );
    let e = event(
        "1",
        "x",
        "2014-08-01 00:00:00",
        &[
            ("flavor", TraitValue::Int(3)),
            ("weight", TraitValue::Float(-0.0)),
            ("launched_at", date("2014-08-01 01:02:03.5")),
        ],
    );
    let values = t.match_event(&e, None).expect("values");
    assert_eq!(values.get("flavor"), Some(&DistValue::Int(3)));
    assert_eq!(
        values.key(),
        "flavor=i:3;weight=f:0;launched_at=d:2014-08-01T01:02:03.500000Z"
    );
}

#[test]
fn stream_keys_are_explicit_escaped_and_stable() {
    let range = tach_timex::TimeRange::new(dt("2014-08-01 00:00:00"), dt("2014-08-02 00:00:00"));
    let values = DistinguishingValues::new(vec![
        ("instance_id".into(), DistValue::Text("a;b=c\\d".into())),
        ("timestamp".into(), DistValue::Range(range)),
        ("n".into(), DistValue::Int(-7)),
        ("f".into(), DistValue::Float(2.5)),
    ]);
    let key = values.key();
    assert_eq!(
        key,
        "instance_id=s:a\\;b\\=c\\\\d;\
         timestamp=r:2014-08-01T00:00:00.000000Z/2014-08-02T00:00:00.000000Z;n=i:-7;f=f:2.5"
    );
    // FNV-1a 64 of the key: pinned so that it never changes across versions.
    let expected_hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    assert_eq!(values.key_hash(), expected_hash);
    assert_eq!(
        DistinguishingValues::new(vec![("x".into(), DistValue::Text("1".into()))]).key_hash(),
        0x4b48_cecf_dbba_9c42
    );
    // Different types never collide.
    let as_int = DistinguishingValues::new(vec![("x".into(), DistValue::Int(1))]);
    let as_text = DistinguishingValues::new(vec![("x".into(), DistValue::Text("1".into()))]);
    assert_ne!(as_int.key(), as_text.key());
}

#[test]
fn distinguishing_values_json_and_serde_round_trip() {
    let range = tach_timex::TimeRange::new(dt("2014-08-01 00:00:00"), dt("2014-08-02 00:00:00"));
    let values = DistinguishingValues::new(vec![
        ("instance_id".into(), DistValue::Text("foo".into())),
        ("timestamp".into(), DistValue::Range(range)),
        ("at".into(), DistValue::Datetime(dt("2014-08-01 10:00:00"))),
        ("n".into(), DistValue::Int(4)),
    ]);
    assert_eq!(
        serde_json::to_string(&values.display()).expect("json"),
        r#"{"instance_id":"foo","timestamp":{"begin":"2014-08-01T00:00:00.000000Z","end":"2014-08-02T00:00:00.000000Z"},"at":"2014-08-01T10:00:00.000000Z","n":4}"#
    );
    assert_eq!(
        values.to_json(),
        json!({"instance_id": "foo", "n": 4, "at": "2014-08-01T10:00:00.000000Z",
               "timestamp": {"begin": "2014-08-01T00:00:00.000000Z", "end": "2014-08-02T00:00:00.000000Z"}})
    );
    let persisted = serde_json::to_string(&values).expect("serialize");
    let reloaded: DistinguishingValues = serde_json::from_str(&persisted).expect("deserialize");
    assert_eq!(reloaded, values);
    assert_eq!(reloaded.key(), values.key());
}

#[test]
fn distinguished_by_errors() {
    let rest = "  expiration: $last + 1d\n  fire_pipeline: p\n  fire_criteria: []\n  \
                match_criteria: [{}]\n";
    assert_eq!(
        load_error(&format!(
            "- name: t\n  distinguished_by: [{{timestamp: day, other: day}}]\n{rest}"
        )),
        "t.yaml: trigger `t`: `distinguished_by`: only one trait is allowed per expression \
         entry (found other, timestamp)"
    );
    assert_eq!(
        load_error(&format!("- name: t\n  distinguished_by: [a, a]\n{rest}")),
        "t.yaml: trigger `t`: `distinguished_by`: `a` is listed twice"
    );
}

// ---- expiry and fire ------------------------------------------------------------------------

#[test]
fn expire_timestamp_from_first_and_last() {
    let t = trigger(SANDBOX_LIKE);
    assert_eq!(
        t.expire_timestamp(dt("2014-08-01 01:00:00"), dt("2014-08-01 10:00:00"))
            .expect("evaluates"),
        dt("2014-08-03 10:00:00")
    );
    let first = with_criterion("{}");
    assert_eq!(first.expiration.text(), "$last + 1d");
    let by_first = trigger(
        "- name: t\n  expiration: $first + 1h\n  fire_pipeline: p\n  fire_criteria: []\n  \
         match_criteria: [{}]\n",
    );
    assert_eq!(
        by_first
            .expire_timestamp(dt("2014-08-01 01:00:00"), dt("2014-08-01 10:00:00"))
            .expect("evaluates"),
        dt("2014-08-01 02:00:00")
    );
    let range = trigger(
        "- name: t\n  expiration: day($last)\n  fire_pipeline: p\n  fire_criteria: []\n  \
         match_criteria: [{}]\n",
    );
    assert_eq!(
        range
            .expire_timestamp(dt("2014-08-01 01:00:00"), dt("2014-08-01 10:00:00"))
            .expect("evaluates"),
        dt("2014-08-01 00:00:00"),
        "a range gives its beginning, as winchester's TimeRange.timestamp"
    );
}

#[test]
fn fire_timestamp_adds_the_fire_delay() {
    let now = dt("2014-08-01 20:04:23.000444");
    assert_eq!(with_criterion("{}").fire_timestamp(now), now);
    let delayed = trigger(
        "- name: t\n  expiration: $last + 1d\n  fire_delay: 3600\n  fire_pipeline: p\n  \
         fire_criteria: []\n  match_criteria: [{}]\n",
    );
    assert_eq!(delayed.fire_delay, Duration::from_secs(3600));
    assert_eq!(
        delayed.fire_timestamp(now),
        dt("2014-08-01 21:04:23.000444")
    );
}

/// winchester's `test_should_fire`, with counters instead of re-reading the stream.
#[test]
fn fire_state_counts_each_fire_criterion() {
    let make = |number: u32| {
        trigger(&format!(
            "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  \
             fire_criteria: [{{event_type: test.thing, number: {number}}}]\n  \
             match_criteria: [{{event_type: test.*}}]\n"
        ))
    };
    let ts = "2014-08-01 00:00:00";
    let events1 = [
        event("1", "test.foobar", ts, &[]),
        event("2", "test.thing", ts, &[]),
        event("3", "test.thing", ts, &[]),
    ];
    let events2 = [
        event("1", "test.foobar", ts, &[]),
        event("2", "test.thing", ts, &[]),
    ];
    let events3 = [
        event("1", "test.foobar", ts, &[]),
        event("2", "test.whatsit", ts, &[]),
    ];
    let should_fire = |t: &TriggerDefinition, events: &[tach_distiller::Event]| {
        let mut state = t.fire_state();
        for e in events {
            state.record(t, e, None);
        }
        state.satisfied()
    };
    let one = make(1);
    assert!(should_fire(&one, &events1));
    assert!(should_fire(&one, &events2));
    assert!(!should_fire(&one, &events3));
    let two = make(2);
    assert!(should_fire(&two, &events1));
    assert!(!should_fire(&two, &events2));
    assert!(!should_fire(&two, &events3));

    let mut state = two.fire_state();
    assert!(!state.record(&two, &events1[1], None));
    assert!(
        state.record(&two, &events1[2], None),
        "the second match satisfies it"
    );
    assert!(
        !state.record(&two, &events1[2], None),
        "only the first time reports"
    );
    assert_eq!(state.counts, vec![2], "counts saturate at what is needed");
    let json = serde_json::to_string(&state).expect("serialize");
    assert_eq!(json, r#"{"counts":[2],"needed":[2]}"#);
    let reloaded: FireState = serde_json::from_str(&json).expect("deserialize");
    assert!(reloaded.satisfied());
}

#[test]
fn every_fire_criterion_must_be_met() {
    let t = trigger(
        "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  \
         fire_criteria: [{event_type: a}, {event_type: b, number: 2}]\n  match_criteria: [{}]\n",
    );
    let ts = "2014-08-01 00:00:00";
    let mut state = t.fire_state();
    state.record(&t, &event("1", "b", ts, &[]), None);
    state.record(&t, &event("2", "b", ts, &[]), None);
    assert!(!state.satisfied());
    assert!(state.record(&t, &event("3", "a", ts, &[]), None));
    assert!(state.satisfied());
}

#[test]
fn stream_progress_tracks_times_and_fires_once() {
    let t = trigger(SANDBOX_LIKE);
    let update = event(
        "1",
        "compute.instance.update",
        "2014-08-01 10:00:00",
        &[("instance_id", text("foo"))],
    );
    let (mut progress, added) =
        StreamProgress::start(&t, &update, dt("2014-08-01 10:00:01"), None).expect("start");
    assert!(!added.ready_to_fire);
    assert_eq!(progress.event_count, 1);
    assert_eq!(progress.first_event, dt("2014-08-01 10:00:00"));
    assert_eq!(progress.expire_timestamp, dt("2014-08-03 10:00:00"));
    assert_eq!(progress.fire_timestamp, None);

    let earlier = event(
        "2",
        "compute.instance.create.end",
        "2014-08-01 08:00:00",
        &[("instance_id", text("foo"))],
    );
    progress
        .add(&t, &earlier, dt("2014-08-01 10:00:02"), None)
        .expect("add");
    assert_eq!(progress.first_event, dt("2014-08-01 08:00:00"));
    assert_eq!(progress.last_event, dt("2014-08-01 10:00:00"));
    assert_eq!(progress.expire_timestamp, dt("2014-08-03 10:00:00"));

    let exists = event(
        "3",
        "compute.instance.exists",
        "2014-08-02 00:05:00",
        &[
            ("instance_id", text("foo")),
            ("audit_period_beginning", date("2014-08-01 00:00:00")),
            ("audit_period_ending", date("2014-08-02 00:00:00")),
        ],
    );
    let mut debug = TriggerDebug::default();
    let now = dt("2014-08-02 00:05:01");
    let added = progress
        .add(&t, &exists, now, Some(&mut debug))
        .expect("add");
    assert!(added.ready_to_fire);
    assert_eq!(progress.fire_timestamp, Some(now));
    assert_eq!(progress.last_event, dt("2014-08-02 00:05:00"));
    assert_eq!(progress.expire_timestamp, dt("2014-08-04 00:05:00"));
    assert_eq!(
        (debug.added_events, debug.ready_to_fire, debug.fire_checks),
        (1, 1, 1)
    );

    let again = progress
        .add(&t, &exists, dt("2014-08-02 01:00:00"), None)
        .expect("add");
    assert!(!again.ready_to_fire);
    assert_eq!(progress.fire_timestamp, Some(now), "set once");
    assert_eq!(progress.event_count, 4);
    assert!(progress.due_to_fire(dt("2014-08-02 00:05:02")));
    assert!(!progress.due_to_fire(now));
    assert!(progress.accepts_at(dt("2014-08-04 00:04:59")));
    assert!(!progress.accepts_at(dt("2014-08-04 00:05:00")));
    assert!(progress.due_to_expire(dt("2014-08-04 00:05:01")));

    let json = serde_json::to_string(&progress).expect("serialize");
    let reloaded: StreamProgress = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(reloaded, progress);
}

#[test]
fn stream_states_codes_and_transitions() {
    let names: Vec<&str> = StreamState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "active",
            "firing",
            "expiring",
            "error",
            "expire_error",
            "completed",
            "retry_fire",
            "retry_expire"
        ]
    );
    let codes: Vec<i32> = StreamState::ALL.iter().map(|s| s.code()).collect();
    assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        "retry_fire".parse::<StreamState>(),
        Ok(StreamState::RetryFire)
    );
    assert_eq!("5".parse::<StreamState>(), Ok(StreamState::ExpireError));
    assert_eq!(
        "done".parse::<StreamState>(),
        Err(
            "unknown stream state `done` (known: active, firing, expiring, error, expire_error, \
             completed, retry_fire, retry_expire)"
                .to_string()
        )
    );
    assert_eq!(StreamState::Error.reset(), Some(StreamState::RetryFire));
    assert_eq!(
        StreamState::ExpireError.reset(),
        Some(StreamState::RetryExpire)
    );
    assert_eq!(StreamState::Firing.reset(), Some(StreamState::RetryFire));
    assert_eq!(
        StreamState::Expiring.reset(),
        Some(StreamState::RetryExpire)
    );
    assert_eq!(StreamState::Active.reset(), None);
    assert_eq!(StreamState::Completed.reset(), None);
    assert_eq!(StreamState::RetryFire.reset(), None);
    assert!(StreamState::RetryFire.can_fire() && !StreamState::RetryFire.can_expire());
    assert!(StreamState::RetryExpire.can_expire() && !StreamState::RetryExpire.can_fire());
    assert!(StreamState::Active.can_fire() && StreamState::Active.can_expire());
    assert!(!StreamState::Completed.can_fire());
    assert_eq!(
        StreamState::Firing.after_pipeline(false),
        Some(StreamState::Error)
    );
    assert_eq!(
        StreamState::Expiring.after_pipeline(false),
        Some(StreamState::ExpireError)
    );
    assert_eq!(
        StreamState::Expiring.after_pipeline(true),
        Some(StreamState::Completed)
    );
    assert_eq!(StreamState::Active.after_pipeline(true), None);
    assert_eq!(
        serde_json::to_string(&StreamState::ExpireError).expect("json"),
        "\"expire_error\""
    );
}

// ---- debug counters -------------------------------------------------------------------------

#[test]
fn debug_counters_record_checks_and_reasons() {
    let t = trigger(SANDBOX_LIKE);
    let mut debug = TriggerDebug::default();
    let ts = "2014-08-01 10:00:00";
    let with_id = [("instance_id", text("i"))];
    assert!(
        t.match_event(
            &event("1", "compute.instance.update", ts, &with_id),
            Some(&mut debug)
        )
        .is_some()
    );
    assert!(
        t.match_event(
            &event("2", "compute.instance.update", ts, &[]),
            Some(&mut debug)
        )
        .is_none()
    );
    assert!(
        t.match_event(&event("3", "image.upload", ts, &with_id), Some(&mut debug))
            .is_none()
    );
    assert_eq!(debug.match_checks, 3);
    assert_eq!(debug.match_passed, 1);
    assert_eq!(
        debug
            .match_failures
            .get(MismatchReason::DistinguishingTraitMissing),
        1
    );
    assert_eq!(
        debug.match_failures.get(MismatchReason::NoMatchingCriteria),
        1
    );
    assert_eq!(debug.match_failures.get(MismatchReason::WrongEventType), 2);
    assert_eq!(
        serde_json::to_value(debug.match_failures).expect("json"),
        json!({"wrong_event_type": 2, "no_matching_criteria": 1, "distinguishing_trait_missing": 1})
    );

    let mut counters = DebugCounters::new(1);
    counters.trigger_mut(0).fired += 2;
    counters.trigger_mut(2).errors += 1;
    assert_eq!(counters.trigger(0).map(|d| d.fired), Some(2));
    assert_eq!(counters.trigger(2).map(|d| d.errors), Some(1));
    counters.log_and_reset(std::slice::from_ref(&t));
    assert_eq!(counters.trigger(0), Some(&TriggerDebug::default()));
    assert_eq!(counters.trigger(2), Some(&TriggerDebug::default()));
}

// ---- dry run --------------------------------------------------------------------------------

/// An event of instance `instance` (no traits when empty).
fn op(id: &str, event_type: &str, ts: &str, instance: &str) -> tach_distiller::Event {
    if instance.is_empty() {
        event(id, event_type, ts, &[])
    } else {
        event(id, event_type, ts, &[("instance_id", text(instance))])
    }
}

/// An exists of `instance` for the audit period `begin`..`end`, sent at `ts`.
fn exists(id: &str, ts: &str, instance: &str, begin: &str, end: &str) -> tach_distiller::Event {
    event(
        id,
        "compute.instance.exists",
        ts,
        &[
            ("instance_id", text(instance)),
            ("audit_period_beginning", date(begin)),
            ("audit_period_ending", date(end)),
        ],
    )
}

#[test]
fn dry_run_daily_usage_streams() {
    let mut run = DryRun::new(vec![trigger(SANDBOX_LIKE)]);
    let events = [
        op(
            "m1",
            "compute.instance.create.start",
            "2014-08-01 10:00:00",
            "A",
        ),
        op(
            "m2",
            "compute.instance.create.end",
            "2014-08-01 10:05:00",
            "A",
        ),
        op("m3", "compute.instance.update", "2014-08-01 15:00:00", "B"),
        op("m4", "compute.instance.update", "2014-08-01 16:00:00", ""),
        exists(
            "m5",
            "2014-08-02 00:05:00",
            "A",
            "2014-08-01 00:00:00",
            "2014-08-02 00:00:00",
        ),
        op("m6", "compute.instance.update", "2014-08-02 03:00:00", "A"),
        exists(
            "m7",
            "2014-08-02 05:00:00",
            "A",
            "2014-08-02 00:00:00",
            "2014-08-02 05:00:00",
        ),
        exists(
            "m8",
            "2014-08-02 06:00:00",
            "A",
            "2014-08-01 00:00:00",
            "2014-08-02 00:00:00",
        ),
        op(
            "m9",
            "compute.instance.exists.verified",
            "2014-08-02 06:00:01",
            "A",
        ),
    ];
    let mut lines = Vec::new();
    for e in &events {
        let matched = run.add(e).expect("add");
        lines.push(matched_line(&e.message_id, &matched));
    }
    let day = |d: &str, next: &str| {
        format!(r#"{{"begin":"{d}T00:00:00.000000Z","end":"{next}T00:00:00.000000Z"}}"#)
    };
    let aug1 = day("2014-08-01", "2014-08-02");
    let aug2 = day("2014-08-02", "2014-08-03");
    let matched = |id: &str, stream: u64, instance: &str, day: &str| {
        format!(
            r#"{{"message_id":"{id}","matched":[{{"trigger":"test_trigger","stream":{stream},"distinguishing_traits":{{"instance_id":"{instance}","timestamp":{day}}}}}]}}"#
        )
    };
    assert_eq!(
        lines,
        vec![
            matched("m1", 1, "A", &aug1),
            matched("m2", 1, "A", &aug1),
            matched("m3", 2, "B", &aug1),
            r#"{"message_id":"m4","matched":[]}"#.to_string(),
            matched("m5", 1, "A", &aug1),
            matched("m6", 3, "A", &aug2),
            matched("m7", 3, "A", &aug2),
            // After stream 1 fired (at m5's time), the same values start a new stream.
            matched("m8", 4, "A", &aug1),
            r#"{"message_id":"m9","matched":[]}"#.to_string(),
        ]
    );

    let streams: Vec<String> = run
        .streams()
        .iter()
        .map(DryRunStream::to_json_line)
        .collect();
    let stream = |n: u64,
                  instance: &str,
                  day: &str,
                  events: u64,
                  fire: Option<&str>,
                  expire: &str| {
        let fire_ts = fire.map_or("null".to_string(), |f| format!("\"{f}\""));
        format!(
            r#"{{"stream":{n},"trigger":"test_trigger","distinguishing_traits":{{"instance_id":"{instance}","timestamp":{day}}},"events":{events},"fire":{},"fire_timestamp":{fire_ts},"expire_timestamp":"{expire}"}}"#,
            fire.is_some()
        )
    };
    assert_eq!(
        streams,
        vec![
            stream(
                1,
                "A",
                &aug1,
                3,
                Some("2014-08-02T00:05:00.000000Z"),
                "2014-08-04T00:05:00.000000Z"
            ),
            stream(2, "B", &aug1, 1, None, "2014-08-03T15:00:00.000000Z"),
            stream(3, "A", &aug2, 2, None, "2014-08-04T05:00:00.000000Z"),
            stream(
                4,
                "A",
                &aug1,
                1,
                Some("2014-08-02T06:00:00.000000Z"),
                "2014-08-04T06:00:00.000000Z"
            ),
        ]
    );
}

#[test]
fn dry_run_starts_a_new_stream_after_expiry() {
    let t = trigger(
        "- name: req\n  distinguished_by: [request_id]\n  expiration: $last + 1h\n  \
         expire_pipeline: p\n  fire_criteria: [{event_type: never}]\n  match_criteria: [{}]\n",
    );
    let mut run = DryRun::new(vec![t]);
    let e = |id: &str, ts: &str| event(id, "x.start", ts, &[("request_id", text("r1"))]);
    let stream_of = |run: &mut DryRun, ev| run.add(&ev).expect("add")[0].stream;
    assert_eq!(stream_of(&mut run, e("1", "2014-08-01 10:00:00")), 1);
    assert_eq!(stream_of(&mut run, e("2", "2014-08-01 10:30:00")), 1);
    assert_eq!(
        stream_of(&mut run, e("3", "2014-08-01 11:30:00")),
        2,
        "expired at 11:30"
    );
    let streams = run.streams();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0].events, 2);
    assert!(!streams[0].fire);
    assert_eq!(streams[0].expire_timestamp, dt("2014-08-01 11:30:00"));
}

#[test]
fn dry_run_fire_after_expiry_does_not_count_as_fired() {
    let t = trigger(
        "- name: slow\n  expiration: $last + 1m\n  fire_delay: 120\n  fire_pipeline: p\n  \
         fire_criteria: [{}]\n  match_criteria: [{}]\n",
    );
    let mut run = DryRun::new(vec![t]);
    run.add(&event("1", "x", "2014-08-01 10:00:00", &[]))
        .expect("add");
    let streams = run.streams();
    assert_eq!(streams[0].fire_timestamp, Some(dt("2014-08-01 10:02:00")));
    assert!(
        !streams[0].fire,
        "it expires at 10:01, before it would fire"
    );
}
