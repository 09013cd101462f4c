//! ScramClient: logs into a PostgreSQL server with SCRAM-SHA-256(-PLUS).

use super::{
    Key, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramError, ScramKeys, attribute, auth_message_hmac,
    base64_decode, base64_encode, ct_eq, nonce, text, valid_nonce, xor,
};

/// What the client says about channel binding in its GS2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n`: the client does not bind (no TLS).
    Unsupported,
    /// `y`: the client could bind but the server did not offer `-PLUS`; a server that did
    /// offer it rejects this as a downgrade.
    NotOffered,
    /// `p=tls-server-end-point`: bind to the server certificate; holds its hash
    /// ([`super::tls_server_end_point`]).
    TlsServerEndPoint(Vec<u8>),
}

impl ChannelBinding {
    /// The GS2 header: the binding flag and an empty authorization identity.
    fn gs2_header(&self) -> &'static str {
        match self {
            Self::Unsupported => "n,,",
            Self::NotOffered => "y,,",
            Self::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// The bytes the `c=` attribute carries: the GS2 header and, when binding, the hash.
    pub(super) fn cbind_input(&self) -> Vec<u8> {
        let mut input = self.gs2_header().as_bytes().to_vec();
        if let Self::TlsServerEndPoint(hash) = self {
            input.extend_from_slice(hash);
        }
        input
    }
}

/// How the client proves itself: a password, or keys recovered by a SCRAM server.
enum Credentials {
    Password(Vec<u8>),
    Keys(ScramKeys),
}

/// Where the client is in the exchange.
enum State {
    /// `client_first` not called yet.
    Initial,
    /// client-first sent; keeps its bare part for the AuthMessage.
    SentFirst { client_first_bare: String },
    /// client-final sent; keeps the signature the server must show.
    SentFinal { server_signature: Key },
    /// The server proved itself.
    Done,
}

/// Client side of SCRAM, driven with the SASL message bodies:
/// `client_first` → `handle_server_first` → `verify_server_final`.
pub struct ScramClient {
    credentials: Credentials,
    binding: ChannelBinding,
    /// Our nonce: printable, no commas.
    nonce: String,
    /// The `n=` user; PostgreSQL ignores it and libpq sends it empty.
    user: String,
    state: State,
}

impl ScramClient {
    /// A client that logs in with `password` and no channel binding.
    pub fn new(password: &[u8]) -> Result<Self, ScramError> {
        Ok(Self::with_credentials(
            Credentials::Password(password.to_vec()),
            nonce()?,
        ))
    }

    /// A client that logs in with keys instead of a password (SCRAM pass-through). The server's
    /// verifier must have been made from the same password, salt and iteration count.
    pub fn with_keys(keys: ScramKeys) -> Result<Self, ScramError> {
        Ok(Self::with_credentials(Credentials::Keys(keys), nonce()?))
    }

    fn with_credentials(credentials: Credentials, nonce: String) -> Self {
        Self {
            credentials,
            binding: ChannelBinding::Unsupported,
            nonce,
            user: String::new(),
            state: State::Initial,
        }
    }

    /// For tests against fixed vectors: a chosen user name and nonce.
    #[cfg(test)]
    pub(super) fn with_nonce(password: &[u8], user: &str, nonce: &str) -> Self {
        let mut client =
            Self::with_credentials(Credentials::Password(password.to_vec()), nonce.into());
        client.user = user.into();
        client
    }

    /// Sets the channel binding to use.
    pub fn channel_binding(mut self, binding: ChannelBinding) -> Self {
        self.binding = binding;
        self
    }

    /// Picks the binding from what the server offered in AuthenticationSASL and, on TLS, the
    /// server certificate's hash: `-PLUS` when both allow it, otherwise plain SCRAM-SHA-256.
    pub fn select(
        mut self,
        offered: &[&str],
        cert_hash: Option<&[u8]>,
    ) -> Result<Self, ScramError> {
        let offers = |name| offered.contains(&name);
        self.binding = match cert_hash {
            Some(hash) if offers(SCRAM_SHA_256_PLUS) => {
                ChannelBinding::TlsServerEndPoint(hash.to_vec())
            }
            Some(_) if offers(SCRAM_SHA_256) => ChannelBinding::NotOffered,
            None if offers(SCRAM_SHA_256) => ChannelBinding::Unsupported,
            _ => {
                return Err(ScramError::UnsupportedMechanism {
                    mechanism: offered.join(","),
                });
            }
        };
        Ok(self)
    }

    /// The mechanism to name in SASLInitialResponse.
    pub fn mechanism(&self) -> &'static str {
        match self.binding {
            ChannelBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            ChannelBinding::Unsupported | ChannelBinding::NotOffered => SCRAM_SHA_256,
        }
    }

    /// The client-first message, the data of SASLInitialResponse.
    pub fn client_first(&mut self) -> Vec<u8> {
        let user = self.user.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={user},r={}", self.nonce);
        let message = format!("{}{client_first_bare}", self.binding.gs2_header());
        self.state = State::SentFirst { client_first_bare };
        message.into_bytes()
    }

    /// Reads the server-first message (AuthenticationSASLContinue) and returns the
    /// client-final message to send in SASLResponse.
    pub fn handle_server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::SentFirst { client_first_bare } = &self.state else {
            return Err(ScramError::OutOfOrder {
                step: "handle_server_first",
            });
        };
        const MSG: &str = "server-first";
        let server_first = text(data, MSG)?;
        let mut parts = server_first.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(ScramError::MandatoryExtension);
        }
        let nonce = attribute(first, 'r', MSG, "no nonce")?;
        let salt = attribute(parts.next(), 's', MSG, "no salt")?;
        let iterations = attribute(parts.next(), 'i', MSG, "no iteration count")?;
        if !valid_nonce(nonce) || nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce)
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt = base64_decode(salt).ok_or(ScramError::Malformed {
            message: MSG,
            reason: "salt is not base64",
        })?;
        let iterations: u32 =
            iterations
                .parse()
                .ok()
                .filter(|&i| i > 0)
                .ok_or(ScramError::Malformed {
                    message: MSG,
                    reason: "bad iteration count",
                })?;

        let keys = match &self.credentials {
            Credentials::Password(password) => ScramKeys::derive(password, &salt, iterations)?,
            Credentials::Keys(keys) => keys.clone(),
        };
        let without_proof = format!("c={},r={nonce}", base64_encode(&self.binding.cbind_input()));
        let stored_key = openssl::sha::sha256(&keys.client_key);
        let client_signature =
            auth_message_hmac(&stored_key, client_first_bare, server_first, &without_proof)?;
        let server_signature = auth_message_hmac(
            &keys.server_key,
            client_first_bare,
            server_first,
            &without_proof,
        )?;
        let proof = xor(&keys.client_key, &client_signature);
        self.state = State::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", base64_encode(&proof)).into_bytes())
    }

    /// Checks the server-final message (AuthenticationSASLFinal): the server must prove it
    /// knows the verifier. Only after `Ok` may AuthenticationOk be trusted.
    pub fn verify_server_final(&mut self, data: &[u8]) -> Result<(), ScramError> {
        let State::SentFinal { server_signature } = &self.state else {
            return Err(ScramError::OutOfOrder {
                step: "verify_server_final",
            });
        };
        const MSG: &str = "server-final";
        let text = text(data, MSG)?;
        let first = text.split(',').next();
        if let Ok(reason) = attribute(first, 'e', MSG, "") {
            return Err(ScramError::Server {
                reason: reason.to_owned(),
            });
        }
        let verifier = attribute(first, 'v', MSG, "no verifier")?;
        let signature = base64_decode(verifier).ok_or(ScramError::Malformed {
            message: MSG,
            reason: "verifier is not base64",
        })?;
        if !ct_eq(&signature, server_signature) {
            return Err(ScramError::InvalidServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }

    /// Whether the server has proved itself.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
