//! A USM user as the polling agent holds it: a name, the keys of its
//! passwords (never the passwords), and the context to ask in.

use super::auth::{AuthProtocol, MIN_PASSWORD_LEN};
use super::key::Key;
use super::privacy::PrivProtocol;
use heapless::Vec;

/// The longest user name (SnmpAdminString, RFC 3414: 1..32).
pub const MAX_USER_LEN: usize = 32;
/// The longest context name (SnmpAdminString, 0..32).
pub const MAX_CONTEXT_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityLevel {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

impl SecurityLevel {
    /// net-snmp's names (`-l`), any case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::NoAuthNoPriv, Self::AuthNoPriv, Self::AuthPriv]
            .into_iter()
            .find(|l| s.eq_ignore_ascii_case(l.name()))
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::NoAuthNoPriv => "noAuthNoPriv",
            Self::AuthNoPriv => "authNoPriv",
            Self::AuthPriv => "authPriv",
        }
    }
}

/// What is wrong with a user's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    UserNameLength,
    ContextNameLength,
    EngineIdLength,
    /// Shorter than 8 characters: RFC 3414 11.2 and every agent refuse it.
    PasswordTooShort,
    /// Privacy needs authentication (RFC 3414 3.1.1).
    PrivacyWithoutAuth,
}

impl CredentialError {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UserNameLength => "a v3 user name has 1 to 32 characters",
            Self::ContextNameLength => "a context name has at most 32 characters",
            Self::EngineIdLength => "an engine id has 5 to 32 octets",
            Self::PasswordTooShort => "a v3 password has at least 8 characters",
            Self::PrivacyWithoutAuth => "privacy (-x/-X) needs authentication (-a/-A) too",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8, MAX_USER_LEN>,
    /// The protocol and Ku of the authentication password.
    auth: Option<(AuthProtocol, Key)>,
    /// The protocol and Ku of the privacy password (made with the
    /// authentication protocol's hash, as RFC 3414 and RFC 3826 say).
    privacy: Option<(PrivProtocol, Key)>,
    pub context_name: Vec<u8, MAX_CONTEXT_LEN>,
    /// The engine to skip discovery for (`-e`); empty to discover it.
    pub engine_id: Vec<u8, 32>,
}

impl User {
    /// A user at noAuthNoPriv.
    pub fn new(name: &[u8]) -> Result<Self, CredentialError> {
        if name.is_empty() {
            return Err(CredentialError::UserNameLength);
        }
        Ok(Self {
            name: Vec::from_slice(name).map_err(|_| CredentialError::UserNameLength)?,
            auth: None,
            privacy: None,
            context_name: Vec::new(),
            engine_id: Vec::new(),
        })
    }

    /// Adds authentication: the password's Ku is computed here, once.
    pub fn with_auth(
        mut self,
        proto: AuthProtocol,
        password: &[u8],
    ) -> Result<Self, CredentialError> {
        if password.len() < MIN_PASSWORD_LEN {
            return Err(CredentialError::PasswordTooShort);
        }
        self.auth = Some((proto, proto.password_to_key(password)));
        // A privacy key made before used another hash: privacy comes after.
        self.privacy = None;
        Ok(self)
    }

    /// Adds privacy (after authentication: its key uses that hash).
    pub fn with_privacy(
        mut self,
        proto: PrivProtocol,
        password: &[u8],
    ) -> Result<Self, CredentialError> {
        let Some((auth, _)) = &self.auth else {
            return Err(CredentialError::PrivacyWithoutAuth);
        };
        if password.len() < MIN_PASSWORD_LEN {
            return Err(CredentialError::PasswordTooShort);
        }
        self.privacy = Some((proto, auth.password_to_key(password)));
        Ok(self)
    }

    pub fn with_context(mut self, context: &[u8]) -> Result<Self, CredentialError> {
        self.context_name =
            Vec::from_slice(context).map_err(|_| CredentialError::ContextNameLength)?;
        Ok(self)
    }

    /// A known engine id (`-e`): no discovery round trip.
    pub fn with_engine_id(mut self, id: &[u8]) -> Result<Self, CredentialError> {
        if !(5..=32).contains(&id.len()) {
            return Err(CredentialError::EngineIdLength);
        }
        self.engine_id = Vec::from_slice(id).map_err(|_| CredentialError::EngineIdLength)?;
        Ok(self)
    }

    /// The same user at authNoPriv (to tell a refused privacy setting
    /// from a device that does not answer at all).
    pub fn without_privacy(&self) -> Self {
        let mut u = self.clone();
        u.privacy = None;
        u
    }

    pub fn level(&self) -> SecurityLevel {
        match (&self.auth, &self.privacy) {
            (None, _) => SecurityLevel::NoAuthNoPriv,
            (Some(_), None) => SecurityLevel::AuthNoPriv,
            (Some(_), Some(_)) => SecurityLevel::AuthPriv,
        }
    }

    pub fn auth_protocol(&self) -> Option<AuthProtocol> {
        self.auth.as_ref().map(|(p, _)| *p)
    }

    pub fn priv_protocol(&self) -> Option<PrivProtocol> {
        self.privacy.as_ref().map(|(p, _)| *p)
    }

    pub(crate) fn auth_ku(&self) -> Option<(AuthProtocol, &Key)> {
        self.auth.as_ref().map(|(p, k)| (*p, k))
    }

    pub(crate) fn priv_ku(&self) -> Option<(PrivProtocol, &Key)> {
        self.privacy.as_ref().map(|(p, k)| (*p, k))
    }
}
