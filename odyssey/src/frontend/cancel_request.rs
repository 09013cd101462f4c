//! A CancelRequest connection: the key is looked up and the cancel forwarded to the server
//! running that client's query, within the `cancel_max_inflight` and timeout limits.

use std::sync::Arc;

use machinarium::Deadline;

use crate::cancel;
use crate::config::Config;
use crate::instance::Instance;
use crate::{od_error, od_info};

/// A CancelRequest: waits for a `cancel_max_inflight` slot up to `cancel_queue_timeout_ms`
/// (else dropped, as upstream), then is forwarded to the server running that client's query,
/// if any. `cancel_timeout_ms 0` waits for the server without a limit.
pub fn forward(inst: &Arc<Instance>, config: &Config, pid: i32, secret: &[u8]) {
    let g = &config.global;
    let queue_timeout = g.cancel_queue_timeout.unwrap_or(2 * g.cancel_timeout);
    let Some(_slot) = inst.cancels.enter(Deadline::after(queue_timeout)) else {
        od_error!(
            inst.logger,
            "startup",
            None,
            None,
            "dropping cancel request due to queue timeout {} ms",
            queue_timeout.as_millis()
        );
        return;
    };
    let Some(target) = inst.cancels.lookup(pid, secret) else {
        return;
    };
    let timeout = Some(g.cancel_timeout).filter(|t| !t.is_zero());
    if let Err(e) = cancel::forward(&target, timeout) {
        let address = &target.address;
        od_info!(
            inst.logger,
            "cancel",
            None,
            None,
            "cancel to {address} failed: {e}"
        );
    }
}
