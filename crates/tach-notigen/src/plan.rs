//! The notification sequence of each Nova instance operation, planned in full when the
//! operation starts: which events, from which service, at what times, with which instance state.
//!
//! Sequences follow Nova's compute manager: nova-api records the task state and emits the first
//! `compute.instance.update`; the compute host wraps its work in `compute.instance.<op>.start`
//! and `.end`, emitting an `update` on every vm/task state change in between. Rebuild, resize
//! and rescue first emit a `compute.instance.exists` for the current audit period
//! (`notify_usage_exists(current_period=True)`), as Nova does. Timing between steps ranges from
//! tens of milliseconds to minutes (spawning, copying disks, uploading snapshots).

use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{FLAVOR_WEIGHTS, FLAVORS, IMAGE_WEIGHTS, IMAGES};
use crate::json::DAY;
use crate::model::{
    API_NODES, Actor, COMPUTE_HOSTS, Context, InstanceState, Publisher, SCHEDULERS,
};
use crate::payload::{Bandwidth, Extras, Kind, render_request_spec};
use crate::rng::Rng;

/// `compute.instance.update`.
pub(crate) const UPDATE: &str = "compute.instance.update";
/// `compute.instance.exists`.
pub(crate) const EXISTS: &str = "compute.instance.exists";

/// An instance operation a user (or Nova) performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Delete,
    Resize,
    Rebuild,
    Rescue,
    Unrescue,
    Snapshot,
    PowerOff,
    PowerOn,
    Reboot,
}

/// One planned notification.
#[derive(Debug)]
pub(crate) struct Step {
    pub at: i64,
    pub event_type: &'static str,
    pub publisher: Publisher,
    pub ctx: Arc<Context>,
    pub state: Arc<InstanceState>,
    pub kind: Kind,
    /// Whether emitting this step makes `state` the instance's current state (false for the
    /// `exists` Nova renders from the pre-operation image, and for scheduler events).
    pub apply: bool,
}

/// A version 4 UUID from the seeded generator.
pub(crate) fn uuid4(rng: &mut Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.next_u128().to_be_bytes()).into_uuid()
}

/// Random traffic for an audit period of `length` microseconds (public busier than private).
pub(crate) fn bandwidth(rng: &mut Rng, length: i64) -> Bandwidth {
    let day_fraction = (length.max(0) as f64) / (DAY as f64);
    let mut scaled = |max_per_day: f64| rng.below((max_per_day * day_fraction) as u64 + 1);
    Bandwidth {
        public_in: scaled(4.0e9),
        public_out: scaled(1.5e9),
        private_in: scaled(6.0e9),
        private_out: scaled(3.0e8),
    }
}

/// The context of an API request by the instance's owner, issued at `at`.
fn user_context(rng: &mut Rng, st: &InstanceState, at: i64) -> Arc<Context> {
    let request_id = uuid4(rng);
    let auth_token = rng.next_u128();
    let octets = rng.next_u64().to_le_bytes();
    let actor = Actor {
        tenant_id: &st.ident.tenant_id,
        user_id: &st.ident.user_id,
        roles: st.ident.roles,
        auth_token: Some(auth_token),
        remote_address: Some([
            octets[0] % 200 + 24,
            octets[1],
            octets[2],
            octets[3] % 253 + 1,
        ]),
        is_admin: false,
    };
    Arc::new(Context::new(request_id, at, &actor))
}

/// Builds the step list of one operation.
struct Planner<'r> {
    rng: &'r mut Rng,
    t: i64,
    ctx: Arc<Context>,
    state: Arc<InstanceState>,
    steps: Vec<Step>,
}

impl Planner<'_> {
    fn wait(&mut self, lo_ms: u64, hi_ms: u64) {
        self.t += self.rng.between(lo_ms * 1000, hi_ms * 1000) as i64;
    }

    fn push(&mut self, event_type: &'static str, publisher: Publisher, kind: Kind, apply: bool) {
        self.steps.push(Step {
            at: self.t,
            event_type,
            publisher,
            ctx: self.ctx.clone(),
            state: self.state.clone(),
            kind,
            apply,
        });
    }

    /// Changes the planned state without a notification (Nova writes some columns silently).
    fn set(&mut self, change: impl FnOnce(&mut InstanceState)) {
        let mut next = (*self.state).clone();
        change(&mut next);
        self.state = Arc::new(next);
    }

    /// Changes the state and emits the `compute.instance.update` Nova sends for it.
    fn update(&mut self, publisher: Publisher, change: impl FnOnce(&mut InstanceState)) {
        let old_state = Some(self.state.vm_state);
        let old_task = self.state.task_state;
        self.set(change);
        self.push(
            UPDATE,
            publisher,
            Kind::Update {
                old_state,
                old_task,
            },
            true,
        );
    }

    fn action(&mut self, event_type: &'static str, publisher: Publisher, extras: Extras) {
        self.push(event_type, publisher, Kind::Action(extras), true);
    }

    /// The `exists` for the current audit period (midnight until now) that rebuild, resize and
    /// rescue emit before they start, rendered from `state`.
    fn exists_now(&mut self, publisher: Publisher, state: Arc<InstanceState>) {
        let begin = self.t - self.t.rem_euclid(DAY);
        let bandwidth = bandwidth(self.rng, self.t - begin);
        let kind = Kind::Exists {
            begin,
            end: self.t,
            bandwidth,
        };
        let current = std::mem::replace(&mut self.state, state);
        self.push(EXISTS, publisher, kind, false);
        self.state = current;
    }

    fn api(&mut self) -> Publisher {
        Publisher::Api(self.rng.between(1, u64::from(API_NODES)) as u16)
    }

    fn compute(&self) -> Publisher {
        Publisher::Compute(self.state.host.unwrap_or(1))
    }

    /// The API call that records the new task state.
    fn api_update(&mut self, task: &'static str) {
        let api = self.api();
        self.update(api, |s| s.task_state = Some(task));
    }

    /// Starts a follow-up request by the same user (resize confirmation).
    fn new_request(&mut self) {
        let issued = self.t - self.rng.between(5_000, 250_000) as i64;
        self.ctx = user_context(self.rng, &self.state, issued);
    }
}

/// A host other than `host`.
fn other_host(rng: &mut Rng, host: Option<u16>) -> u16 {
    let current = host.unwrap_or(0);
    loop {
        let candidate = rng.between(1, u64::from(COMPUTE_HOSTS)) as u16;
        if candidate != current || COMPUTE_HOSTS == 1 {
            return candidate;
        }
    }
}

/// Plans `op` on the instance whose state is `state`, starting at `t0`; returns the steps in
/// time order. For `Create`, `state` is the freshly recorded instance (building, no host).
pub(crate) fn plan(rng: &mut Rng, op: Operation, t0: i64, state: Arc<InstanceState>) -> Vec<Step> {
    let issued = t0 - rng.between(5_000, 250_000) as i64;
    let ctx = user_context(rng, &state, issued);
    let mut p = Planner {
        rng,
        t: t0,
        ctx,
        state,
        steps: Vec::with_capacity(16),
    };
    match op {
        Operation::Create => create(&mut p),
        Operation::Delete => delete(&mut p),
        Operation::Resize => resize(&mut p),
        Operation::Rebuild => rebuild(&mut p),
        Operation::Rescue => rescue(&mut p),
        Operation::Snapshot => snapshot(&mut p),
        Operation::Unrescue => simple(
            &mut p,
            Simple {
                start: "compute.instance.unrescue.start",
                end: "compute.instance.unrescue.end",
                task: "unrescuing",
                vm_state: "active",
                work_ms: (5_000, 60_000),
                fixed_ips: true,
            },
        ),
        Operation::PowerOff => simple(
            &mut p,
            Simple {
                start: "compute.instance.power_off.start",
                end: "compute.instance.power_off.end",
                task: "powering-off",
                vm_state: "stopped",
                work_ms: (2_000, 60_000),
                fixed_ips: false,
            },
        ),
        Operation::PowerOn => simple(
            &mut p,
            Simple {
                start: "compute.instance.power_on.start",
                end: "compute.instance.power_on.end",
                task: "powering-on",
                vm_state: "active",
                work_ms: (2_000, 45_000),
                fixed_ips: false,
            },
        ),
        Operation::Reboot => {
            let task = if p.rng.chance(0.2) {
                "rebooting_hard"
            } else {
                "rebooting"
            };
            simple(
                &mut p,
                Simple {
                    start: "compute.instance.reboot.start",
                    end: "compute.instance.reboot.end",
                    task,
                    vm_state: "active",
                    work_ms: (10_000, 120_000),
                    fixed_ips: false,
                },
            );
        }
    }
    p.steps
}

fn create(p: &mut Planner<'_>) {
    // nova-api records the instance (building / scheduling) and announces it.
    let api = p.api();
    p.push(
        UPDATE,
        api,
        Kind::Update {
            old_state: None,
            old_task: None,
        },
        true,
    );
    let spec = Arc::new(render_request_spec(&p.state));
    let scheduler = Publisher::Scheduler(p.rng.between(1, u64::from(SCHEDULERS)) as u16);
    let host = p.rng.between(1, u64::from(COMPUTE_HOSTS)) as u16;
    let weight = p.rng.between(20, 2000) as u32;
    p.wait(500, 3_000);
    let start = Kind::Scheduler {
        spec: spec.clone(),
        weighted_host: None,
    };
    p.push("scheduler.run_instance.start", scheduler, start, false);
    p.wait(100, 500);
    let scheduled = Kind::Scheduler {
        spec: spec.clone(),
        weighted_host: Some((host, weight)),
    };
    p.push(
        "scheduler.run_instance.scheduled",
        scheduler,
        scheduled,
        false,
    );
    p.wait(100, 500);
    p.push(
        "scheduler.run_instance.end",
        scheduler,
        Kind::Scheduler {
            spec,
            weighted_host: None,
        },
        false,
    );
    // The scheduler writes the host into the database; nova-compute takes over.
    p.wait(500, 3_000);
    p.set(|s| s.host = Some(host));
    let compute = p.compute();
    let named = Extras {
        image_name: true,
        message: Some(""),
        ..Extras::default()
    };
    p.action("compute.instance.create.start", compute, named);
    p.wait(50, 500);
    p.update(compute, |s| s.task_state = Some("networking"));
    p.wait(1_000, 10_000);
    p.update(compute, |s| s.task_state = Some("block_device_mapping"));
    p.wait(1_000, 5_000);
    p.update(compute, |s| s.task_state = Some("spawning"));
    p.wait(20_000, 240_000);
    let launched = p.t;
    p.update(compute, |s| {
        s.vm_state = "active";
        s.task_state = None;
        s.launched_at = Some(launched);
    });
    p.wait(50, 500);
    let done = Extras {
        fixed_ips: true,
        message: Some("Success"),
        ..named
    };
    p.action("compute.instance.create.end", compute, done);
}

fn delete(p: &mut Planner<'_>) {
    p.api_update("deleting");
    let compute = p.compute();
    p.wait(500, 3_000);
    p.action("compute.instance.delete.start", compute, Extras::default());
    p.wait(50, 300);
    p.action(
        "compute.instance.shutdown.start",
        compute,
        Extras::default(),
    );
    p.wait(2_000, 60_000);
    p.action("compute.instance.shutdown.end", compute, Extras::default());
    p.wait(500, 5_000);
    let terminated = p.t;
    p.update(compute, |s| {
        s.vm_state = "deleted";
        s.task_state = None;
        s.terminated_at = Some(terminated);
    });
    // instance_destroy stamps deleted_at; Nova reports it equal to terminated_at.
    p.wait(50, 500);
    p.set(|s| s.deleted_at = Some(terminated));
    p.action("compute.instance.delete.end", compute, Extras::default());
}

fn resize(p: &mut Planner<'_>) {
    let source = p.compute();
    let old = p.state.flavor;
    let new = loop {
        let candidate = &FLAVORS[p.rng.weighted(&FLAVOR_WEIGHTS)];
        if candidate != old {
            break candidate;
        }
    };
    let dest_host = other_host(p.rng, p.state.host);
    let dest = Publisher::Compute(dest_host);
    p.api_update("resize_prep");
    // prep_resize runs on the destination and first reports usage so far.
    p.wait(1_000, 5_000);
    let before = p.state.clone();
    p.exists_now(dest, before);
    p.wait(50, 300);
    p.action(
        "compute.instance.resize.prep.start",
        dest,
        Extras::default(),
    );
    p.wait(500, 3_000);
    let prep_end = Extras {
        new_flavor: Some(new),
        ..Extras::default()
    };
    p.action("compute.instance.resize.prep.end", dest, prep_end);
    // resize_instance on the source host copies the disk over.
    let net = Extras {
        fixed_ips: true,
        ..Extras::default()
    };
    p.wait(500, 3_000);
    p.update(source, |s| s.task_state = Some("resize_migrating"));
    p.wait(50, 300);
    p.action("compute.instance.resize.start", source, net);
    p.wait(30_000, 600_000);
    p.update(source, |s| s.task_state = Some("resize_migrated"));
    p.wait(100, 1_000);
    p.action("compute.instance.resize.end", source, net);
    // finish_resize on the destination switches flavor and host and relaunches.
    p.wait(500, 3_000);
    p.update(dest, |s| {
        s.task_state = Some("resize_finish");
        s.flavor = new;
        s.host = Some(dest_host);
    });
    p.wait(50, 300);
    p.action("compute.instance.finish_resize.start", dest, net);
    p.wait(10_000, 120_000);
    let launched = p.t;
    p.update(dest, |s| {
        s.vm_state = "resized";
        s.task_state = None;
        s.launched_at = Some(launched);
    });
    p.wait(50, 500);
    p.action("compute.instance.finish_resize.end", dest, net);
    // The user confirms later, in a request of its own; the source host cleans up.
    p.wait(30_000, 1_800_000);
    p.new_request();
    p.action(
        "compute.instance.resize.confirm.start",
        source,
        Extras::default(),
    );
    p.wait(1_000, 20_000);
    p.update(source, |s| s.vm_state = "active");
    p.wait(50, 500);
    p.action("compute.instance.resize.confirm.end", source, net);
}

fn rebuild(p: &mut Planner<'_>) {
    let old = p.state.clone();
    let image = if p.rng.chance(0.7) {
        &IMAGES[p.rng.weighted(&IMAGE_WEIGHTS)]
    } else {
        old.image
    };
    let compute = p.compute();
    // The API stores the new image with the task state.
    let api = p.api();
    p.update(api, |s| {
        s.task_state = Some("rebuilding");
        s.image = image;
    });
    // Usage so far is reported with the original image's metadata.
    p.wait(1_000, 5_000);
    let mut before = (*p.state).clone();
    before.image = old.image;
    p.exists_now(compute, Arc::new(before));
    p.wait(50, 300);
    let named = Extras {
        image_name: true,
        ..Extras::default()
    };
    p.action("compute.instance.rebuild.start", compute, named);
    p.wait(1_000, 5_000);
    p.update(compute, |s| {
        s.task_state = Some("rebuild_block_device_mapping")
    });
    p.wait(1_000, 10_000);
    p.update(compute, |s| s.task_state = Some("rebuild_spawning"));
    p.wait(20_000, 240_000);
    let launched = p.t;
    p.update(compute, |s| {
        s.vm_state = "active";
        s.task_state = None;
        s.launched_at = Some(launched);
    });
    p.wait(50, 500);
    p.action(
        "compute.instance.rebuild.end",
        compute,
        Extras {
            fixed_ips: true,
            ..named
        },
    );
}

fn rescue(p: &mut Planner<'_>) {
    let compute = p.compute();
    p.api_update("rescuing");
    p.wait(1_000, 5_000);
    let before = p.state.clone();
    p.exists_now(compute, before);
    p.wait(50, 300);
    let extras = Extras {
        rescue_image: true,
        fixed_ips: true,
        ..Extras::default()
    };
    p.action("compute.instance.rescue.start", compute, extras);
    p.wait(10_000, 120_000);
    p.update(compute, |s| {
        s.vm_state = "rescued";
        s.task_state = None;
    });
    p.wait(50, 500);
    p.action("compute.instance.rescue.end", compute, extras);
}

fn snapshot(p: &mut Planner<'_>) {
    let compute = p.compute();
    p.api_update("image_snapshot");
    p.wait(500, 3_000);
    p.action(
        "compute.instance.snapshot.start",
        compute,
        Extras::default(),
    );
    p.wait(2_000, 30_000);
    p.update(compute, |s| s.task_state = Some("image_pending_upload"));
    p.wait(1_000, 10_000);
    p.update(compute, |s| s.task_state = Some("image_uploading"));
    p.wait(30_000, 900_000);
    p.update(compute, |s| s.task_state = None);
    p.wait(50, 500);
    p.action("compute.instance.snapshot.end", compute, Extras::default());
}

/// Operations shaped like `api update (task) → <op>.start → update (vm state) → <op>.end`.
struct Simple {
    start: &'static str,
    end: &'static str,
    /// Task state nova-api records.
    task: &'static str,
    /// vm_state once done.
    vm_state: &'static str,
    /// How long the compute host works, in milliseconds.
    work_ms: (u64, u64),
    /// Whether Nova attaches network info to `.start` and `.end`.
    fixed_ips: bool,
}

fn simple(p: &mut Planner<'_>, op: Simple) {
    let compute = p.compute();
    let net = Extras {
        fixed_ips: op.fixed_ips,
        ..Extras::default()
    };
    p.api_update(op.task);
    p.wait(500, 3_000);
    p.action(op.start, compute, net);
    p.wait(op.work_ms.0, op.work_ms.1);
    p.update(compute, |s| {
        s.vm_state = op.vm_state;
        s.task_state = None;
    });
    p.wait(50, 500);
    p.action(op.end, compute, net);
}
