//! What a notification describes: an instance's fixed identity, its state at one moment, the
//! request context of the operation acting on it, and the service that published it.
//!
//! States are immutable snapshots shared through `Arc`: an operation plans every step's state up
//! front, and a notification keeps the snapshot it was emitted with.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{Flavor, Image};
use crate::json::{Fragment, push_hex128, push_time_quoted, push_uuid};

/// Number of compute hosts (`compute.host-1` .. `compute.host-100`), as in StackTach's notigen.
pub(crate) const COMPUTE_HOSTS: u16 = 100;
/// Number of API nodes publishing the first `compute.instance.update` of a request.
pub(crate) const API_NODES: u16 = 4;
/// Number of schedulers publishing `scheduler.run_instance.*`.
pub(crate) const SCHEDULERS: u16 = 3;

/// The service and host a notification comes from; renders as `publisher_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publisher {
    /// `api.api-N`: nova-api, which emits the request's first `compute.instance.update`.
    Api(u16),
    /// `scheduler.scheduler-N`: nova-scheduler.
    Scheduler(u16),
    /// `compute.host-N`: a nova-compute host.
    Compute(u16),
}

impl fmt::Display for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Publisher::Api(n) => write!(f, "api.api-{n}"),
            Publisher::Scheduler(n) => write!(f, "scheduler.scheduler-{n}"),
            Publisher::Compute(n) => write!(f, "compute.host-{n}"),
        }
    }
}

impl Publisher {
    /// Appends the `publisher_id` text without allocating.
    pub(crate) fn push(&self, out: &mut String) {
        let (prefix, n) = match self {
            Publisher::Api(n) => ("api.api-", n),
            Publisher::Scheduler(n) => ("scheduler.scheduler-", n),
            Publisher::Compute(n) => ("compute.host-", n),
        };
        out.push_str(prefix);
        crate::json::push_u64(out, u64::from(*n));
    }
}

/// What never changes about an instance.
#[derive(Debug)]
pub(crate) struct Identity {
    pub instance_id: Uuid,
    pub tenant_id: Arc<str>,
    pub user_id: Arc<str>,
    /// The owner's `_context_roles` array, pre-rendered.
    pub roles: &'static str,
    pub display_name: String,
    pub hostname: String,
    pub created_at: i64,
    pub access_ip_v4: String,
    pub access_ip_v6: String,
    /// The `fixed_ips` array (public v4, public v6, private v4), pre-rendered.
    pub fixed_ips_json: Fragment,
    pub reservation_id: String,
    /// Glance API server in `image_ref_url`.
    pub glance: &'static str,
}

/// An instance as Nova's database holds it at one moment.
#[derive(Debug, Clone)]
pub(crate) struct InstanceState {
    pub ident: Arc<Identity>,
    /// `vm_state`: building, active, stopped, rescued, resized, deleted.
    pub vm_state: &'static str,
    /// `task_state` (`state_description` in payloads); `None` when idle.
    pub task_state: Option<&'static str>,
    pub flavor: &'static Flavor,
    pub image: &'static Image,
    /// Compute host number; `None` until scheduled.
    pub host: Option<u16>,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// The request context of one API request (or of the periodic usage audit); every
/// notification the request causes carries the same `_context_*` keys.
#[derive(Debug)]
pub(crate) struct Context {
    pub request_id: Uuid,
    /// The `"_context_auth_token": ...` through `"_context_user_name": ...` members, rendered
    /// once per request (sorted keys, no braces).
    pub json: Fragment,
}

/// Who is acting in a context.
pub(crate) struct Actor<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub roles: &'a str,
    /// `None` for the periodic audit, which runs with an admin context and no token.
    pub auth_token: Option<u128>,
    /// Client address; `None` for the periodic audit.
    pub remote_address: Option<[u8; 4]>,
    pub is_admin: bool,
}

impl Context {
    /// Renders a context issued at `timestamp` (micros) for `actor`.
    pub(crate) fn new(request_id: Uuid, timestamp: i64, actor: &Actor<'_>) -> Context {
        let mut s = String::with_capacity(640);
        s.push_str("\"_context_auth_token\":");
        match actor.auth_token {
            Some(token) => {
                s.push('"');
                push_hex128(&mut s, token);
                s.push('"');
            }
            None => s.push_str("null"),
        }
        s.push_str(
            ",\"_context_glance_api_servers\":null,\"_context_instance_lock_checked\":false",
        );
        s.push_str(if actor.is_admin {
            ",\"_context_is_admin\":true"
        } else {
            ",\"_context_is_admin\":false"
        });
        for key in ["project_id", "project_name"] {
            s.push_str(",\"_context_");
            s.push_str(key);
            s.push_str("\":\"");
            s.push_str(actor.tenant_id);
            s.push('"');
        }
        s.push_str(",\"_context_quota_class\":null,\"_context_read_deleted\":\"no\"");
        s.push_str(",\"_context_remote_address\":");
        match actor.remote_address {
            Some([a, b, c, d]) => {
                s.push('"');
                for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                    if i > 0 {
                        s.push('.');
                    }
                    crate::json::push_u64(&mut s, u64::from(octet));
                }
                s.push('"');
            }
            None => s.push_str("null"),
        }
        s.push_str(",\"_context_request_id\":\"req-");
        push_uuid(&mut s, &request_id);
        s.push_str("\",\"_context_roles\":");
        s.push_str(actor.roles);
        s.push_str(",\"_context_tenant\":\"");
        s.push_str(actor.tenant_id);
        s.push_str("\",\"_context_timestamp\":");
        push_time_quoted(&mut s, timestamp);
        for key in ["user", "user_id", "user_name"] {
            s.push_str(",\"_context_");
            s.push_str(key);
            s.push_str("\":\"");
            s.push_str(actor.user_id);
            s.push('"');
        }
        Context {
            request_id,
            json: Fragment::new(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_ids() {
        let mut s = String::new();
        Publisher::Compute(17).push(&mut s);
        assert_eq!(s, "compute.host-17");
        assert_eq!(Publisher::Compute(17).to_string(), s);
        assert_eq!(Publisher::Api(2).to_string(), "api.api-2");
        assert_eq!(Publisher::Scheduler(3).to_string(), "scheduler.scheduler-3");
    }

    #[test]
    fn context_renders_every_key() {
        let actor = Actor {
            tenant_id: "276404",
            user_id: "641842",
            roles: r#"["_member_"]"#,
            auth_token: Some(0xabc),
            remote_address: Some([192, 0, 2, 7]),
            is_admin: false,
        };
        let ctx = Context::new(Uuid::from_u128(1), 0, &actor);
        let v: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", ctx.json.bare())).unwrap();
        assert_eq!(
            v["_context_request_id"],
            "req-00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(v["_context_auth_token"], "00000000000000000000000000000abc");
        assert_eq!(v["_context_remote_address"], "192.0.2.7");
        assert_eq!(v["_context_timestamp"], "1970-01-01 00:00:00.000000");
        assert_eq!(v["_context_project_id"], "276404");
        assert_eq!(v["_context_tenant"], "276404");
        assert_eq!(v["_context_user_id"], "641842");
        assert_eq!(v["_context_roles"], serde_json::json!(["_member_"]));
        assert_eq!(v["_context_is_admin"], false);
        assert_eq!(v.as_object().unwrap().len(), 16);
    }
}
