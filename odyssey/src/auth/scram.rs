//! `scram-sha-256` logins: AuthenticationSASL offering SCRAM-SHA-256 (and SCRAM-SHA-256-PLUS
//! with `tls-server-end-point` on TLS), checked against the rule's password, plain or a
//! stored SCRAM verifier. The client's keys are kept for SCRAM pass-through to the server.

use kiwi::backend::Authentication;
use kiwi::frontend::SaslInitialResponse;
use kiwi::scram::{ScramError, ScramServer, tls_server_end_point_of};
use kiwi::sqlstate::{self, SqlState};

use super::{AuthError, Authenticated, ClientAuth, hold, read_response, rule_secret, send};
use crate::conn::Conn;
use crate::reply::Reply;

/// Runs the SASL exchange: AuthenticationSASL, SASLInitialResponse, AuthenticationSASLContinue,
/// SASLResponse, AuthenticationSASLFinal (AuthenticationOk is sent by the caller).
pub(super) fn scram(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Authenticated, AuthError> {
    let secret = rule_secret(a, true)?;
    let mut server =
        ScramServer::from_secret(secret.value()).map_err(|_| AuthError::Misconfigured {
            reply: frontend_error(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                "invalid user password or SCRAM secret, check your config",
            ),
            reason: "the rule password is neither plain text nor a valid SCRAM verifier",
        })?;
    if let Some(hash) = channel_binding(conn) {
        server = server.channel_binding(hash);
    }
    let mechanisms = server.mechanisms();
    send(conn, a, &Authentication::Sasl { mechanisms })?;

    let body = read_response(conn, a)?;
    let malformed_first = || {
        AuthError::Rejected(frontend_error(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "malformed SASLInitialResponse message",
        ))
    };
    let initial = SaslInitialResponse::decode(&body).map_err(|_| malformed_first())?;
    let data = initial.data.ok_or_else(malformed_first)?;
    let server_first = server
        .handle_client_first(initial.mechanism, data)
        .map_err(|e| first_error(&e))?;
    let data = &server_first;
    send(conn, a, &Authentication::SaslContinue { data })?;

    let client_final = read_response(conn, a)?;
    let server_final = server
        .handle_client_final(&client_final)
        .map_err(|e| final_error(a, &e))?;
    if secret.is_fake() {
        return Err(final_error(a, &ScramError::InvalidProof));
    }
    // Held, to go out with AuthenticationOk and the greeting in one packet.
    let data = &server_final;
    hold(conn, &Authentication::SaslFinal { data });
    Ok(Authenticated {
        scram_keys: server.keys(),
        secret: secret.keep(),
        ..Authenticated::default()
    })
}

/// The `tls-server-end-point` hash of our certificate when the client is on TLS; without one
/// (no TLS, or a certificate without a usable digest) only plain SCRAM-SHA-256 is offered.
fn channel_binding(conn: &Conn) -> Option<Vec<u8>> {
    let cert = conn.tls()?.ssl().certificate()?;
    tls_server_end_point_of(cert).ok()
}

/// The reply to a bad client-first message, with upstream's texts.
fn first_error(e: &ScramError) -> AuthError {
    let (code, text) = match e {
        ScramError::UnsupportedMechanism { .. } => (
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "unsupported SASL authorization mechanism",
        ),
        ScramError::ChannelBinding { .. } => (
            sqlstate::FEATURE_NOT_SUPPORTED,
            "doesn't support channel binding at the moment",
        ),
        ScramError::AuthorizationIdentity => (
            sqlstate::FEATURE_NOT_SUPPORTED,
            "doesn't support authorization identity at the moment",
        ),
        ScramError::MandatoryExtension => (
            sqlstate::FEATURE_NOT_SUPPORTED,
            "doesn't support mandatory extensions at the moment",
        ),
        _ => (
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "malformed SASLInitialResponse message",
        ),
    };
    AuthError::Rejected(frontend_error(code, text))
}

/// The reply to a bad client-final message; a wrong proof is the only FATAL.
fn final_error(a: &ClientAuth<'_>, e: &ScramError) -> AuthError {
    let text = match e {
        ScramError::InvalidProof => {
            return AuthError::Rejected(Reply::fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("password authentication failed for user \"{}\"", a.user),
            ));
        }
        ScramError::NonceMismatch => "malformed client SASLResponse: nonce doesn't match",
        _ => "malformed client SASLResponse",
    };
    AuthError::Rejected(frontend_error(
        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        text,
    ))
}

/// An ERROR with upstream's `frontend auth: ` prefix for SCRAM messages.
fn frontend_error(code: SqlState, text: &str) -> Reply {
    Reply::error(code, format!("frontend auth: {text}"))
}
