//! The simulation: a population of instances, operations arriving as a Poisson process and
//! interleaving in time, and Nova's usage audit at every midnight.
//!
//! Each running operation (and each host's midnight audit) keeps its planned steps; only its
//! next step sits in a binary heap keyed by time, so output is in timestamp order while memory
//! stays proportional to the number of operations in flight and instances alive, never to the
//! length of the run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::{
    ADMIN_ROLES, FLAVOR_WEIGHTS, FLAVORS, GLANCE_SERVERS, IMAGE_WEIGHTS, IMAGES, NAME_PREFIXES,
    PUBLIC_V4_PREFIXES, ROLE_SETS,
};
use crate::config::NotigenConfig;
use crate::json::{DAY, Fragment, SECOND, push_u64};
use crate::model::{Actor, COMPUTE_HOSTS, Context, Identity, InstanceState, Publisher};
use crate::notification::Notification;
use crate::payload::Kind;
use crate::plan::{EXISTS, Operation, Step, bandwidth, plan, uuid4};
use crate::rng::Rng;

/// Fewest instances a run starts with.
const MIN_POPULATION: usize = 20;
/// Most instances a run starts with (bounds memory at very high operation rates).
const MAX_POPULATION: usize = 100_000;
/// Instances per operation-per-hour: at the default 600/h, 7 200 instances, each seeing about
/// two operations a day and living about ten days.
const INSTANCES_PER_HOURLY_OP: f64 = 12.0;
/// Share of operations that create an instance when the population is at its target; deletes
/// are about as frequent, and the share grows or shrinks with the population's distance from
/// its target so the population stays near it.
const CREATE_SHARE: f64 = 0.05;

/// Operation mix for an idle instance, by its vm_state.
const ACTIVE_OPS: [(Operation, f64); 7] = [
    (Operation::Delete, 4.0),
    (Operation::Resize, 8.0),
    (Operation::Rebuild, 8.0),
    (Operation::Rescue, 4.0),
    (Operation::Snapshot, 14.0),
    (Operation::PowerOff, 8.0),
    (Operation::Reboot, 25.0),
];
const STOPPED_OPS: [(Operation, f64); 3] = [
    (Operation::PowerOn, 70.0),
    (Operation::Delete, 10.0),
    (Operation::Snapshot, 20.0),
];
const RESCUED_OPS: [(Operation, f64); 2] = [(Operation::Unrescue, 90.0), (Operation::Delete, 10.0)];

/// A user of a tenant.
struct User {
    id: Arc<str>,
    roles: &'static str,
}

/// A tenant (project) owning instances.
struct Tenant {
    id: Arc<str>,
    users: Vec<User>,
}

/// An instance of the population.
struct Instance {
    /// State as of the last emitted notification.
    current: Arc<InstanceState>,
    /// Position in `Generator::idle` while no operation runs on it.
    idle_pos: Option<usize>,
    /// `delete.end` was emitted; kept until the next midnight audit has reported it.
    deleted: bool,
}

/// What happens to the instance when an operation's last step is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// It becomes idle again.
    Release,
    /// It is gone (reported once more by the next audit).
    Delete,
    /// Nothing: a midnight audit.
    Nothing,
}

/// A running operation or audit.
struct Op {
    instance: Option<usize>,
    /// Remaining steps, last step first (so the next one is `pop`ped).
    steps: Vec<Step>,
    finish: Finish,
}

/// Generates a seeded, time-ordered stream of Nova notifications; see the crate documentation.
pub struct Generator {
    rng: Rng,
    /// Operations stop at this simulated time (micros); `i64::MAX` for none.
    end: i64,
    limit: u64,
    generated: u64,
    /// Time of the last emitted notification (or the start).
    clock: i64,
    /// Next operation arrival; `i64::MAX` when no more will come.
    next_arrival: i64,
    /// Mean time between arrivals in micros (infinite when the rate is not positive).
    mean_gap: f64,
    /// Next usage audit; `i64::MAX` when no more will run.
    next_midnight: i64,
    /// (time of the op's next step, tie-breaking sequence number, op slot).
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    seq: u64,
    ops: Vec<Option<Op>>,
    free_ops: Vec<usize>,
    instances: Vec<Option<Instance>>,
    free_instances: Vec<usize>,
    /// Slots of instances no operation is running on.
    idle: Vec<usize>,
    /// Instances not deleted (building ones included).
    live: usize,
    target: usize,
    tenants: Vec<Tenant>,
}

impl Generator {
    /// Sets up the initial population and the first arrival for `cfg`.
    pub fn new(cfg: NotigenConfig) -> Generator {
        let start = cfg.start.timestamp_micros();
        let duration = match (cfg.duration, cfg.count) {
            (None, None) => Some(DAY),
            (Some(d), _) => Some(d.num_microseconds().unwrap_or(i64::MAX)),
            (None, Some(_)) => None,
        };
        let end = duration.map_or(i64::MAX, |d| start.saturating_add(d.max(0)));
        let rate = cfg.operations_per_hour;
        let rate_positive = rate > 0.0 && rate.is_finite();
        let mean_gap = if rate_positive {
            3_600.0 * SECOND as f64 / rate
        } else {
            f64::INFINITY
        };
        let target = if rate_positive {
            ((rate * INSTANCES_PER_HOURLY_OP).round() as usize)
                .clamp(MIN_POPULATION, MAX_POPULATION)
        } else {
            MIN_POPULATION
        };
        let first_midnight = start - start.rem_euclid(DAY) + DAY;
        let mut g = Generator {
            rng: Rng::new(cfg.seed),
            end,
            limit: cfg.count.unwrap_or(u64::MAX),
            generated: 0,
            clock: start,
            next_arrival: i64::MAX,
            mean_gap,
            next_midnight: if first_midnight <= end {
                first_midnight
            } else {
                i64::MAX
            },
            heap: BinaryHeap::new(),
            seq: 0,
            ops: Vec::new(),
            free_ops: Vec::new(),
            instances: Vec::with_capacity(target + target / 4),
            free_instances: Vec::new(),
            idle: Vec::with_capacity(target + target / 4),
            live: 0,
            target,
            tenants: Vec::new(),
        };
        g.make_tenants();
        for _ in 0..target {
            g.add_existing_instance(start);
        }
        g.schedule_arrival(start);
        g
    }

    /// The simulated clock: the timestamp of the last notification returned (the start before
    /// the first).
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.clock).unwrap_or_default()
    }

    /// How many notifications have been returned so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    fn make_tenants(&mut self) {
        let count = (self.target / 5).max(5);
        for _ in 0..count {
            let id = self.rng.between(100_000, 999_999).to_string();
            let users = (0..self.rng.between(1, 3))
                .map(|_| User {
                    id: self.rng.between(100_000, 999_999).to_string().into(),
                    roles: ROLE_SETS[self.rng.index(ROLE_SETS.len())],
                })
                .collect();
            self.tenants.push(Tenant {
                id: id.into(),
                users,
            });
        }
    }

    /// A new instance identity owned by a (skewed: some tenants own many) random tenant.
    fn new_identity(&mut self, created_at: i64) -> Arc<Identity> {
        let rng = &mut self.rng;
        let u = rng.unit();
        let tenant = &self.tenants[((u * u) * self.tenants.len() as f64) as usize];
        let user = &tenant.users[rng.index(tenant.users.len())];
        let instance_id = uuid4(rng);
        let name = format!(
            "{}-{:04}",
            NAME_PREFIXES[rng.index(NAME_PREFIXES.len())],
            rng.below(10_000)
        );
        let [a, b] = PUBLIC_V4_PREFIXES[rng.index(PUBLIC_V4_PREFIXES.len())];
        let v4 = format!("{a}.{b}.{}.{}", rng.between(1, 254), rng.between(1, 254));
        let v6 = format!(
            "2001:4800:7812:514:be76:4eff:fe{:02x}:{:04x}",
            rng.below(256),
            rng.below(65_536)
        );
        let private = format!("10.176.{}.{}", rng.between(1, 254), rng.between(1, 254));
        let mut fixed_ips = String::with_capacity(400);
        for (i, (address, label, version)) in [
            (&v4, "public", 4),
            (&v6, "public", 6),
            (&private, "private", 4),
        ]
        .into_iter()
        .enumerate()
        {
            fixed_ips.push_str(if i == 0 {
                "[{\"address\":\""
            } else {
                ",{\"address\":\""
            });
            fixed_ips.push_str(address);
            fixed_ips.push_str("\",\"floating_ips\":[],\"label\":\"");
            fixed_ips.push_str(label);
            fixed_ips.push_str("\",\"meta\":{},\"type\":\"fixed\",\"version\":");
            push_u64(&mut fixed_ips, version);
            fixed_ips.push('}');
        }
        fixed_ips.push(']');
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let reservation_id: String = "r-"
            .chars()
            .chain((0..8).map(|_| char::from(ALPHABET[rng.index(ALPHABET.len())])))
            .collect();
        Arc::new(Identity {
            instance_id,
            tenant_id: tenant.id.clone(),
            user_id: user.id.clone(),
            roles: user.roles,
            hostname: name.clone(),
            display_name: name,
            created_at,
            access_ip_v4: v4,
            access_ip_v6: v6,
            fixed_ips_json: Fragment::new(fixed_ips),
            reservation_id,
            glance: GLANCE_SERVERS[rng.index(GLANCE_SERVERS.len())],
        })
    }

    /// Adds an instance launched long before `start` (the population the run begins with).
    fn add_existing_instance(&mut self, start: i64) {
        let created_at = start - self.rng.between(DAY as u64, 400 * DAY as u64) as i64;
        let ident = self.new_identity(created_at);
        let launched_at =
            created_at + self.rng.between(60 * SECOND as u64, 600 * SECOND as u64) as i64;
        let vm_state = match self.rng.weighted(&[92.0, 6.0, 2.0]) {
            0 => "active",
            1 => "stopped",
            _ => "rescued",
        };
        let state = InstanceState {
            ident,
            vm_state,
            task_state: None,
            flavor: &FLAVORS[self.rng.weighted(&FLAVOR_WEIGHTS)],
            image: &IMAGES[self.rng.weighted(&IMAGE_WEIGHTS)],
            host: Some(self.rng.between(1, u64::from(COMPUTE_HOSTS)) as u16),
            launched_at: Some(launched_at),
            terminated_at: None,
            deleted_at: None,
        };
        let slot = self.insert_instance(Arc::new(state));
        self.make_idle(slot);
    }

    fn insert_instance(&mut self, current: Arc<InstanceState>) -> usize {
        self.live += 1;
        let instance = Instance {
            current,
            idle_pos: None,
            deleted: false,
        };
        match self.free_instances.pop() {
            Some(slot) => {
                self.instances[slot] = Some(instance);
                slot
            }
            None => {
                self.instances.push(Some(instance));
                self.instances.len() - 1
            }
        }
    }

    fn make_idle(&mut self, slot: usize) {
        if let Some(instance) = self.instances.get_mut(slot).and_then(Option::as_mut) {
            instance.idle_pos = Some(self.idle.len());
            self.idle.push(slot);
        }
    }

    fn make_busy(&mut self, slot: usize) {
        let Some(pos) = self
            .instances
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|i| i.idle_pos.take())
        else {
            return;
        };
        self.idle.swap_remove(pos);
        if let Some(&moved) = self.idle.get(pos)
            && let Some(instance) = self.instances[moved].as_mut()
        {
            instance.idle_pos = Some(pos);
        }
    }

    fn schedule_arrival(&mut self, after: i64) {
        let gap = self.rng.exponential(self.mean_gap);
        let next = if gap.is_finite() {
            after.saturating_add((gap as i64).max(1))
        } else {
            i64::MAX
        };
        self.next_arrival = if next < self.end { next } else { i64::MAX };
    }

    /// Picks what the arriving operation does, and to which idle instance.
    fn choose(&mut self) -> (Operation, Option<usize>) {
        let ratio = (self.target as f64 / self.live.max(1) as f64).clamp(0.5, 2.0);
        if self.idle.is_empty() || self.rng.chance(CREATE_SHARE * ratio) {
            return (Operation::Create, None);
        }
        let slot = self.idle[self.rng.index(self.idle.len())];
        let vm_state = self.instances[slot]
            .as_ref()
            .map_or("active", |i| i.current.vm_state);
        let table: &[(Operation, f64)] = match vm_state {
            "stopped" => &STOPPED_OPS,
            "rescued" => &RESCUED_OPS,
            _ => &ACTIVE_OPS,
        };
        let mut weights = [0.0; ACTIVE_OPS.len()];
        for (w, (_, weight)) in weights.iter_mut().zip(table) {
            *w = *weight;
        }
        (
            table[self.rng.weighted(&weights[..table.len()])].0,
            Some(slot),
        )
    }

    /// Starts the operation arriving now.
    fn start_operation(&mut self) {
        let t = self.next_arrival;
        self.schedule_arrival(t);
        let (op, chosen) = self.choose();
        let (slot, state) =
            match chosen.and_then(|s| Some((s, self.instances[s].as_ref()?.current.clone()))) {
                Some((slot, state)) => {
                    self.make_busy(slot);
                    (slot, state)
                }
                None => {
                    let state = Arc::new(InstanceState {
                        ident: self.new_identity(t),
                        vm_state: "building",
                        task_state: Some("scheduling"),
                        flavor: &FLAVORS[self.rng.weighted(&FLAVOR_WEIGHTS)],
                        image: &IMAGES[self.rng.weighted(&IMAGE_WEIGHTS)],
                        host: None,
                        launched_at: None,
                        terminated_at: None,
                        deleted_at: None,
                    });
                    (self.insert_instance(state.clone()), state)
                }
            };
        let op = if chosen.is_some() {
            op
        } else {
            Operation::Create
        };
        let steps = plan(&mut self.rng, op, t, state);
        let finish = if op == Operation::Delete {
            Finish::Delete
        } else {
            Finish::Release
        };
        self.add_op(Some(slot), steps, finish);
    }

    fn add_op(&mut self, instance: Option<usize>, mut steps: Vec<Step>, finish: Finish) {
        steps.reverse();
        let Some(first) = steps.last().map(|s| s.at) else {
            return;
        };
        let op = Op {
            instance,
            steps,
            finish,
        };
        let slot = match self.free_ops.pop() {
            Some(slot) => {
                self.ops[slot] = Some(op);
                slot
            }
            None => {
                self.ops.push(Some(op));
                self.ops.len() - 1
            }
        };
        self.push_heap(first, slot);
    }

    fn push_heap(&mut self, at: i64, slot: usize) {
        self.heap.push(Reverse((at, self.seq, slot)));
        self.seq += 1;
    }

    /// Nova's `_instance_usage_audit` at midnight: every compute host reports a
    /// `compute.instance.exists` for each instance that was launched and not terminated during
    /// the day that just ended, including instances deleted during it (with `deleted_at`).
    fn audit(&mut self) {
        let midnight = self.next_midnight;
        let begin = midnight - DAY;
        self.next_midnight = match midnight.checked_add(DAY) {
            Some(next) if next <= self.end => next,
            _ => i64::MAX,
        };
        let mut by_host: Vec<Vec<Arc<InstanceState>>> =
            vec![Vec::new(); usize::from(COMPUTE_HOSTS) + 1];
        for slot in 0..self.instances.len() {
            let Some(instance) = &self.instances[slot] else {
                continue;
            };
            let st = &instance.current;
            let launched = st.launched_at.is_some_and(|l| l < midnight);
            let alive = st.terminated_at.is_none_or(|t| t > begin);
            if launched
                && alive
                && let Some(host) = st.host
            {
                by_host[usize::from(host)].push(st.clone());
            }
            if instance.deleted {
                self.instances[slot] = None;
                self.free_instances.push(slot);
            }
        }
        for (host, states) in by_host.into_iter().enumerate() {
            if states.is_empty() {
                continue;
            }
            // Each host's periodic task wakes up within a few minutes of midnight.
            let mut t = midnight + self.rng.between(SECOND as u64, 180 * SECOND as u64) as i64;
            let issued = t;
            let mut steps = Vec::with_capacity(states.len());
            for st in states {
                t += self.rng.between(5_000, 80_000) as i64;
                let from = st.launched_at.map_or(begin, |l| l.max(begin));
                let until = st.terminated_at.map_or(midnight, |d| d.min(midnight));
                let bandwidth = bandwidth(&mut self.rng, until - from);
                let actor = Actor {
                    tenant_id: &st.ident.tenant_id,
                    user_id: &st.ident.user_id,
                    roles: ADMIN_ROLES,
                    auth_token: None,
                    remote_address: None,
                    is_admin: true,
                };
                let ctx = Arc::new(Context::new(uuid4(&mut self.rng), issued, &actor));
                steps.push(Step {
                    at: t,
                    event_type: EXISTS,
                    publisher: Publisher::Compute(host as u16),
                    ctx,
                    state: st,
                    kind: Kind::Exists {
                        begin,
                        end: midnight,
                        bandwidth,
                    },
                    apply: false,
                });
            }
            self.add_op(None, steps, Finish::Nothing);
        }
    }

    /// Ends an operation whose last step was just emitted.
    fn finish(&mut self, instance: Option<usize>, finish: Finish) {
        let Some(slot) = instance else { return };
        match finish {
            Finish::Release => self.make_idle(slot),
            Finish::Delete => {
                if let Some(inst) = self.instances[slot].as_mut() {
                    inst.deleted = true;
                    self.live -= 1;
                }
            }
            Finish::Nothing => {}
        }
    }
}

impl Iterator for Generator {
    type Item = Notification;

    fn next(&mut self) -> Option<Notification> {
        if self.generated >= self.limit {
            return None;
        }
        loop {
            let top = self.heap.peek().map_or(i64::MAX, |Reverse((at, _, _))| *at);
            if self.next_midnight != i64::MAX
                && self.next_midnight <= top
                && self.next_midnight <= self.next_arrival
            {
                self.audit();
                continue;
            }
            if self.next_arrival != i64::MAX && self.next_arrival <= top {
                self.start_operation();
                continue;
            }
            let Reverse((at, _, op_slot)) = self.heap.pop()?;
            let Some(op) = self.ops.get_mut(op_slot).and_then(Option::as_mut) else {
                continue;
            };
            let Some(step) = op.steps.pop() else { continue };
            let (instance, finish, next_at) =
                (op.instance, op.finish, op.steps.last().map(|s| s.at));
            if at >= self.end && finish != Finish::Nothing {
                // Past the end of the run: operations in flight are cut off (audits due at or
                // before the end still complete).
                self.ops[op_slot] = None;
                self.free_ops.push(op_slot);
                continue;
            }
            match next_at {
                Some(next_at) => self.push_heap(next_at, op_slot),
                None => {
                    self.ops[op_slot] = None;
                    self.free_ops.push(op_slot);
                }
            }
            if step.apply
                && let Some(inst) = instance.and_then(|slot| self.instances[slot].as_mut())
            {
                inst.current = step.state.clone();
            }
            if next_at.is_none() {
                self.finish(instance, finish);
            }
            self.clock = at;
            self.generated += 1;
            return Some(Notification {
                event_type: step.event_type,
                timestamp: DateTime::from_timestamp_micros(at).unwrap_or_default(),
                message_id: uuid4(&mut self.rng),
                request_id: step.ctx.request_id,
                instance_id: step.state.ident.instance_id,
                micros: at,
                unique_id: self.rng.next_u128(),
                publisher: step.publisher,
                ctx: step.ctx,
                state: step.state,
                kind: step.kind,
            });
        }
    }
}
