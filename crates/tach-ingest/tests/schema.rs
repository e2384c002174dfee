//! schemas/winchester.schema.json: the repository's config/winchester.yaml validates, typos are
//! caught, and the `ingest:` section the schema accepts is one `IngestConfig` reads.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tach_ingest::IngestConfig;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo("schemas/winchester.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_repository_winchester_yaml_validates() {
    let text = std::fs::read_to_string(repo("config/winchester.yaml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let v = validator();
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    // And its ingest: section is what the worker reads.
    let config = IngestConfig::from_section(doc.get("ingest")).unwrap();
    assert_eq!(config.sources.len(), 1);
}

#[test]
fn every_source_kind_and_the_api_section_validate() {
    let doc = json!({
        "config_path": ["."],
        "database": {"url": "sqlite://tach.db"},
        "statistics_period": "30s",
        "api": {"bind": "0.0.0.0:8000", "auth_token": "secret", "query_timeout": 2.5},
        "ingest": {
            "sources": [
                {"type": "rabbitmq", "url": "amqp://u:p@h:5672/%2f",
                 "queues": [{"queue": "a", "prefetch": 100}, {"queue_name": "b", "max_messages": 5}]},
                {"type": "kafka", "brokers": "k:9092", "topics": ["t"], "group": "g",
                 "options": {"security.protocol": "ssl"}},
                {"type": "files", "paths": ["a.jsonl"]},
                {"type": "stdin"}
            ],
            "batch": {"max_messages": 10, "max_wait_ms": 5},
            "dead_letter": {"queue": "dead", "topic": "dead"},
            "backoff": {"initial_ms": 10, "max_ms": 100},
            "statistics_period": 1,
            "shutdown_timeout": 5
        }
    });
    assert_eq!(errors(&validator(), &doc), Vec::<String>::new());
    IngestConfig::from_section(doc.get("ingest")).unwrap();
}

#[test]
fn typos_and_bad_values_are_caught() {
    let v = validator();
    let bad = [
        json!({"databse": {"url": "sqlite://x"}}),
        json!({"ingest": {"sources": [{"type": "rabbitmq", "hots": "x"}]}}),
        json!({"ingest": {"sources": [{"type": "mqtt"}]}}),
        json!({"ingest": {"sources": []}}),
        json!({"ingest": {"sources": [{"type": "stdin"}], "batch": {"max_messages": 0}}}),
        json!({"api": {"bind": "x", "max_limit": 0}}),
    ];
    for doc in bad {
        assert!(!errors(&v, &doc).is_empty(), "{doc} should not validate");
    }
}
