//! Fire latency (issue 3): the time from a stream's fire time to its completion by a running
//! `tach pipeline` worker with the sandbox's worker settings (`pipeline_worker_delay` and
//! `pipeline_worker_batch_size` of sandbox/winchester.yaml), on SQLite.
//!
//! `cargo bench -p tach --bench fire_latency` (ROUNDS=N sets the number of streams, default 40).
//! Each round commits two events that make a fresh stream ready to fire at once (`fire_delay`
//! 0), then polls the store every 2 ms until the stream is `completed`; rounds start at random
//! moments so they do not lock into the worker's sleep cycle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use tach_distiller::{Event, Trait, TraitValue};
use tach_engine::WinchesterConfig;
use tach_store::{Store, StreamFilter, StreamState};
use tach_worker::WorkerSetup;

const TRIGGERS: &str = "\
- name: latency
  distinguished_by: [instance_id]
  expiration: \"$last + 1h\"
  fire_pipeline: latency_fire
  expire_pipeline: latency_fire
  fire_delay: 0
  match_criteria:
    - event_type: \"compute.instance.*\"
  fire_criteria:
    - event_type: \"*.end\"
";

const PIPELINES: &str = "latency_fire:\n  - logger\n";

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sandbox = WinchesterConfig::load(root.join("sandbox/winchester.yaml"))?;
    let dir = std::env::temp_dir().join(format!("tach_fire_latency_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("triggers.yaml"), TRIGGERS)?;
    std::fs::write(dir.join("pipelines.yaml"), PIPELINES)?;
    let config_file = dir.join("winchester.yaml");
    std::fs::write(
        &config_file,
        format!(
            "database:\n  url: sqlite://{db}\ntrigger_definitions: triggers.yaml\n\
             pipeline_config: pipelines.yaml\npipeline_handlers:\n  logger: logger\n\
             pipeline_worker_delay: {delay}\npipeline_worker_batch_size: {batch}\n\
             purge_completed_streams: false\n",
            db = dir.join("tach.db").display(),
            delay = sandbox.pipeline_worker_delay.as_secs_f64(),
            batch = sandbox.pipeline_worker_batch_size,
        ),
    )?;
    let tach = PathBuf::from(env!("CARGO_BIN_EXE_tach"));
    let migrated = Command::new(&tach)
        .args(["db", "migrate", "--config"])
        .arg(&config_file)
        .status()?;
    anyhow::ensure!(migrated.success(), "tach db migrate failed");
    let _worker = Worker(
        Command::new(&tach)
            .args(["pipeline", "--config"])
            .arg(&config_file)
            .env("TACH_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?,
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let mut latencies = runtime.block_on(async {
        let config = WinchesterConfig::load(&config_file)?;
        let setup = WorkerSetup::load(&config)?;
        let store = Store::connect(&format!("sqlite://{}", dir.join("tach.db").display())).await?;
        let mut manager = setup.trigger_manager(store.clone());
        let mut latencies = Vec::with_capacity(rounds);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..rounds {
            // A pause of 0–500 ms (xorshift), so rounds hit every phase of the worker's sleep.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            tokio::time::sleep(Duration::from_millis(seed % 500)).await;
            let instance = format!("latency-{round}");
            let now = Utc::now();
            let event = |kind: &str| Event {
                message_id: format!("{instance}-{kind}"),
                event_type: format!("compute.instance.create.{kind}"),
                timestamp: now,
                traits: vec![Trait {
                    name: "instance_id".into(),
                    value: TraitValue::Text(instance.clone()),
                }],
            };
            manager
                .add_events(&[event("start"), event("end")], now)
                .await?;
            let ready = Instant::now();
            let filter = StreamFilter {
                distinguishing_traits: vec![("instance_id".into(), instance.clone())],
                ..Default::default()
            };
            loop {
                let streams = store.list_streams(&filter).await?;
                if streams.iter().any(|s| s.state == StreamState::Completed) {
                    break;
                }
                anyhow::ensure!(
                    ready.elapsed() < Duration::from_secs(60),
                    "stream {instance} did not complete within 60 s"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            latencies.push(ready.elapsed());
        }
        store.close().await;
        anyhow::Ok(latencies)
    })?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "fire latency over {rounds} streams (pipeline_worker_delay {:?}): p50 {:?}, p90 {:?}, \
         p99 {:?}, max {:?}",
        sandbox.pipeline_worker_delay,
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
