//! The greeting after login: a ParameterStatus for every parameter a server of the route
//! reports (the client's own value where it set one), our BackendKeyData, ReadyForQuery.

use kiwi::backend::{BackendKeyData, ParameterStatus, ReadyForQuery, TransactionStatus};
use kiwi::var::Vars;

use crate::client::ClientKey;

/// The bytes of the greeting.
pub fn greeting(params: &[(Vec<u8>, Vec<u8>)], client: &Vars, key: ClientKey) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in params {
        let name_str = String::from_utf8_lossy(name);
        let value = client.get(&name_str).unwrap_or(value);
        ParameterStatus { name, value }.encode(&mut out);
    }
    BackendKeyData {
        pid: key.pid,
        key: key.secret(),
    }
    .encode(&mut out);
    ReadyForQuery {
        status: TransactionStatus::Idle,
    }
    .encode(&mut out);
    out
}
