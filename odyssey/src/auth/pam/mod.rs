//! PAM password checks for `clear_text` rules with `auth_pam_service` (spec §8): the client's
//! password is given to the PAM service (with PAM_RHOST set to the client's address) on the
//! pooler's auth thread pool, so that a slow PAM module never stalls a worker. Every failure
//! answers the client like a wrong password; the log says why.

#[allow(unsafe_code)]
mod ffi;

use super::{AuthError, ClientAuth, password_failed};
use crate::od_error;

/// Checks `password` for the client's user with PAM service `service`.
pub(super) fn verify(a: &ClientAuth<'_>, service: &str, password: &[u8]) -> Result<(), AuthError> {
    let Some(p) = a.pooler else {
        return Err(AuthError::Rejected(password_failed(a)));
    };
    let refuse = |why: &str| {
        od_error!(
            p.inst.logger,
            "auth_pam",
            Some(p.info),
            None,
            "PAM service \"{service}\" refused user \"{}\": {why}",
            a.user
        );
        AuthError::Rejected(password_failed(a))
    };
    let Ok(password) = std::str::from_utf8(password) else {
        return Err(refuse("the password is not UTF-8"));
    };
    let (service_owned, user, password) = (
        service.to_string(),
        a.user.to_string(),
        password.to_string(),
    );
    let rhost = a.peer.map(|ip| ip.to_string());
    match p.inst.auth_pool.run(a.deadline, move || {
        ffi::authenticate(&service_owned, &user, &password, rhost.as_deref())
    }) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(refuse(&why)),
        Err(e) => Err(refuse(&format!("no answer in time: {e}"))),
    }
}
