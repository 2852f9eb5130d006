//! The ACL user and password a builder gives apart from the URL, as every
//! kind of backend (one server, Sentinel, Cluster) puts them into its
//! connection settings.

use redis::ConnectionInfo;

/// An ACL user and password given apart from the URL; each replaces the
/// URL's.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl Credentials {
    /// Whether a user or password was given.
    pub(crate) fn is_set(&self) -> bool {
        self.username.is_some() || self.password.is_some()
    }

    /// `info` with this user and password in place of its own.
    pub(crate) fn apply(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        info.set_redis_settings(settings)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}
