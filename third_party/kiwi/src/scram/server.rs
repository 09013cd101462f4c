//! ScramServer: authenticates a client with SCRAM-SHA-256(-PLUS) against a stored verifier or
//! a plaintext password.

use super::{
    Key, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramError, ScramKeys, ScramVerifier,
    TLS_SERVER_END_POINT, attribute, auth_message_hmac, base64_decode, base64_encode, ct_eq, nonce,
    text, valid_nonce, xor,
};

/// Where the server is in the exchange.
enum State {
    /// Waiting for SASLInitialResponse.
    Initial,
    /// server-first sent; keeps what the AuthMessage and the checks of client-final need.
    SentFirst {
        client_first_bare: String,
        server_first: String,
        /// Client nonce + server nonce.
        nonce: String,
        /// What the client's `c=` must decode to.
        cbind_input: Vec<u8>,
    },
    /// The client proved itself; its ClientKey is known.
    Done { client_key: Key },
    /// A step failed; the exchange cannot go on.
    Failed,
}

/// Server side of SCRAM, driven with the SASL message bodies:
/// `handle_client_first` → `handle_client_final`.
pub struct ScramServer {
    verifier: ScramVerifier,
    /// `tls-server-end-point` hash of our certificate when the client is on TLS; enables `-PLUS`.
    cert_hash: Option<Vec<u8>>,
    /// Fixed server nonce part, for tests against published vectors.
    server_nonce: Option<String>,
    state: State,
}

impl ScramServer {
    /// A server checking clients against `verifier`.
    pub fn new(verifier: ScramVerifier) -> Self {
        Self {
            verifier,
            cert_hash: None,
            server_nonce: None,
            state: State::Initial,
        }
    }

    /// A server checking clients against a plaintext password (a verifier is derived with a
    /// fresh salt).
    pub fn from_password(password: &[u8]) -> Result<Self, ScramError> {
        Ok(Self::new(ScramVerifier::generate(password)?))
    }

    /// A server for a configured secret: a stored verifier when it has that form, a plaintext
    /// password otherwise.
    pub fn from_secret(secret: &str) -> Result<Self, ScramError> {
        if secret.starts_with("SCRAM-SHA-256$") {
            Ok(Self::new(ScramVerifier::parse(secret)?))
        } else {
            Self::from_password(secret.as_bytes())
        }
    }

    /// Offers `-PLUS`, binding to the certificate whose `tls-server-end-point` hash is given.
    pub fn channel_binding(mut self, cert_hash: Vec<u8>) -> Self {
        self.cert_hash = Some(cert_hash);
        self
    }

    /// Fixes the server's nonce part: for published test vectors and for the fuzz target,
    /// which must replay an exchange byte for byte to reach the proof check.
    #[cfg(any(test, fuzzing))]
    pub fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.into());
        self
    }

    /// Mechanisms to offer in AuthenticationSASL, preferred first.
    pub fn mechanisms(&self) -> Vec<&'static str> {
        match self.cert_hash {
            Some(_) => vec![SCRAM_SHA_256_PLUS, SCRAM_SHA_256],
            None => vec![SCRAM_SHA_256],
        }
    }

    /// Reads SASLInitialResponse (`mechanism` and its data) and returns the server-first
    /// message to send in AuthenticationSASLContinue.
    pub fn handle_client_first(
        &mut self,
        mechanism: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(ScramError::OutOfOrder {
                step: "handle_client_first",
            });
        }
        self.state = State::Failed;
        const MSG: &str = "client-first";
        let malformed = |reason| ScramError::Malformed {
            message: MSG,
            reason,
        };
        let text = text(data, MSG)?;
        let (flag, rest) = text.split_once(',').ok_or(malformed("no GS2 header"))?;
        let (authzid, bare) = rest.split_once(',').ok_or(malformed("no GS2 header"))?;
        let binds = self.check_binding(mechanism, flag)?;
        if !authzid.is_empty() {
            return Err(match authzid.starts_with("a=") {
                true => ScramError::AuthorizationIdentity,
                false => malformed("bad authorization identity"),
            });
        }
        let mut parts = bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(ScramError::MandatoryExtension);
        }
        attribute(first, 'n', MSG, "no user name")?; // PostgreSQL uses the startup user instead
        let client_nonce = attribute(parts.next(), 'r', MSG, "no nonce")?;
        if !valid_nonce(client_nonce) {
            return Err(malformed("bad nonce"));
        }

        let gs2_header = text
            .get(..flag.len() + authzid.len() + 2)
            .unwrap_or_default();
        let mut cbind_input = gs2_header.as_bytes().to_vec();
        if binds {
            cbind_input.extend_from_slice(self.cert_hash.as_deref().unwrap_or_default());
        }
        let server_part = match &self.server_nonce {
            Some(fixed) => fixed.clone(),
            None => nonce()?,
        };
        let nonce = format!("{client_nonce}{server_part}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            base64_encode(&self.verifier.salt),
            self.verifier.iterations
        );
        self.state = State::SentFirst {
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            cbind_input,
        };
        Ok(server_first.into_bytes())
    }

    /// Checks the mechanism against the GS2 binding flag; `true` when the client binds.
    fn check_binding(&self, mechanism: &str, flag: &str) -> Result<bool, ScramError> {
        let refuse = |reason| Err(ScramError::ChannelBinding { reason });
        let plus_offered = self.cert_hash.is_some();
        match (mechanism, flag) {
            (SCRAM_SHA_256_PLUS, _) if !plus_offered => Err(ScramError::UnsupportedMechanism {
                mechanism: mechanism.to_owned(),
            }),
            (SCRAM_SHA_256_PLUS, f) if f == format!("p={TLS_SERVER_END_POINT}") => Ok(true),
            (SCRAM_SHA_256_PLUS, f) if f.starts_with("p=") => refuse("unsupported binding type"),
            (SCRAM_SHA_256_PLUS, _) => refuse("-PLUS chosen without binding data"),
            (SCRAM_SHA_256, "n") => Ok(false),
            (SCRAM_SHA_256, "y") if plus_offered => {
                refuse("client says the server offered no binding, but it did (downgrade)")
            }
            (SCRAM_SHA_256, "y") => Ok(false),
            (SCRAM_SHA_256, f) if f.starts_with("p=") => {
                refuse("binding requested with a mechanism that has none")
            }
            (SCRAM_SHA_256, _) => Err(ScramError::Malformed {
                message: "client-first",
                reason: "bad channel binding flag",
            }),
            _ => Err(ScramError::UnsupportedMechanism {
                mechanism: mechanism.to_owned(),
            }),
        }
    }

    /// Reads SASLResponse (client-final), checks the proof, and returns the server-final
    /// message to send in AuthenticationSASLFinal (then AuthenticationOk).
    pub fn handle_client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let State::SentFirst {
            client_first_bare,
            server_first,
            nonce,
            cbind_input,
        } = state
        else {
            return Err(ScramError::OutOfOrder {
                step: "handle_client_final",
            });
        };
        const MSG: &str = "client-final";
        let malformed = |reason| ScramError::Malformed {
            message: MSG,
            reason,
        };
        let text = text(data, MSG)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(malformed("no proof"))?;
        let mut parts = without_proof.split(',');
        let binding = attribute(parts.next(), 'c', MSG, "no channel binding")?;
        let client_nonce = attribute(parts.next(), 'r', MSG, "no nonce")?;
        let binding = base64_decode(binding).ok_or(malformed("channel binding is not base64"))?;
        if !ct_eq(&binding, &cbind_input) {
            return Err(ScramError::ChannelBinding {
                reason: "binding data does not match",
            });
        }
        if client_nonce != nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof = base64_decode(proof).ok_or(malformed("proof is not base64"))?;
        let proof =
            Key::try_from(proof.as_slice()).map_err(|_| malformed("proof is not 32 bytes"))?;

        let v = &self.verifier;
        let client_signature = auth_message_hmac(
            &v.stored_key,
            &client_first_bare,
            &server_first,
            without_proof,
        )?;
        let client_key = xor(&proof, &client_signature);
        if !ct_eq(&openssl::sha::sha256(&client_key), &v.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = auth_message_hmac(
            &v.server_key,
            &client_first_bare,
            &server_first,
            without_proof,
        )?;
        self.state = State::Done { client_key };
        Ok(format!("v={}", base64_encode(&server_signature)).into_bytes())
    }

    /// After a successful exchange, the client's keys: enough to log into a server that stores
    /// the same verifier (SCRAM pass-through).
    pub fn keys(&self) -> Option<ScramKeys> {
        match self.state {
            State::Done { client_key } => Some(ScramKeys {
                client_key,
                server_key: self.verifier.server_key,
            }),
            State::Initial | State::SentFirst { .. } | State::Failed => None,
        }
    }

    /// Whether the client has proved itself.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }
}
