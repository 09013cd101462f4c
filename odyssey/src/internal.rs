//! Odyssey's own clients (auth_query, group rules): one query on a server of an internal
//! route, the route of the first `pool_routing "internal"` rule matching the query's database
//! and user, made on first use and pooled like any other.

use std::sync::Arc;

use machinarium::Deadline;

use crate::backend::BackendError;
use crate::backend::auth::BackendCredentials;
use crate::backend::rows::{Row, query_rows};
use crate::config::Rule;
use crate::config::rule::Transport;
use crate::instance::Instance;
use crate::logger::ClientInfo;
use crate::route::RouteKey;
use crate::router::{self, AttachError, Connector};
use crate::rules::Request;

/// A query of the pooler's own.
pub struct InternalQuery<'a> {
    /// The internal route's database (`auth_query_db`, `group_query_db`).
    pub database: &'a str,
    /// The internal route's user (`auth_query_user`, `group_query_user`).
    pub user: &'a str,
    /// The SQL, run on the unnamed statement.
    pub sql: &'a str,
    /// Text parameters `$1`, `$2`...
    pub params: &'a [&'a [u8]],
    /// When to give up, connecting included.
    pub deadline: Deadline,
    /// The login of a new server of the internal route, from its rule and user (`auth`
    /// knows the precedence of storage and rule passwords).
    pub credentials: &'a dyn Fn(&Rule, &str) -> BackendCredentials,
}

/// Runs `q` and returns its rows; `Err` says why not, for the log. `client` is the client the
/// query is for (log lines), if any.
pub fn rows(
    inst: &Arc<Instance>,
    client: Option<&ClientInfo>,
    q: &InternalQuery<'_>,
) -> Result<Vec<Row>, String> {
    let (db, user) = (q.database, q.user);
    let snapshot = inst.config();
    let config = &snapshot.config;
    let req = Request {
        database: db,
        user,
        transport: Transport::Unix,
        ip: None,
        hostname: None,
        internal: true,
        is_member: &|_, _| false,
    };
    let rule = snapshot
        .rules
        .forward(config, &req)
        .ok_or_else(|| format!("no internal rule for route '{db}.{user}'"))?;
    let internal = &config.rules[rule];
    let origin = snapshot.origin(rule);
    let key = RouteKey {
        generation: origin.generation,
        rule: origin.index,
        database: db.to_string(),
        user: user.to_string(),
        tsa: config.rule_tsa(internal),
        catchup: internal.catchup_timeout.as_secs(),
        balancing: None,
    };
    let route = inst.router.ensure(key, &origin.config);
    let credentials = || (q.credentials)(route.rule(), user);
    let via = Connector {
        credentials: &credentials,
        resolver: &inst.resolver,
        logger: &inst.logger,
        client,
        deadline: q.deadline,
    };
    let mut checkout = router::attach(&route, &via, &mut |_| {}).map_err(|e| match e {
        AttachError::PoolTimeout { route, .. } => format!("no server for '{route}' in time"),
        AttachError::Cancelled => "cancelled".to_string(),
        AttachError::Connect(e) => format!("cannot connect as '{db}.{user}': {e}"),
    })?;
    let result = query_rows(
        checkout.server_mut(),
        q.sql.as_bytes(),
        q.params,
        q.deadline,
    );
    let nobody = ClientInfo::new(crate::id::ClientId::new());
    let info = client.unwrap_or(&nobody);
    match result {
        Ok(rows) => {
            router::detach(checkout, &inst.logger, info);
            Ok(rows)
        }
        Err(e @ BackendError::Server(_)) => {
            router::detach(checkout, &inst.logger, info);
            Err(format!("query failed: {e}"))
        }
        // The checkout is dropped: its server closed.
        Err(e) => Err(format!("query failed: {e}")),
    }
}
