//! The cloud's address as `--cloud` and the provisioning block give it:
//! `https://host[:port][/...]`, an IPv6 address in brackets. The host agent
//! and the firmware read it the same way.

use core::fmt;

/// The port when the URL names none.
pub const HTTPS_PORT: u16 = 443;

/// Where the cloud is; borrows the URL's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudUrl<'a> {
    /// A name or an address, without brackets.
    pub host: &'a str,
    pub port: u16,
}

/// Why a cloud URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// Only `https://` is spoken.
    NotHttps,
    NoHost,
    /// A host with brackets, user info, spaces or control characters in it.
    BadHost,
    /// `[` without its `]`.
    UnclosedBracket,
    BadPort,
    /// Something between `]` and the port or path.
    TrailingText,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::NotHttps => "must start with https://",
            UrlError::NoHost => "has no host",
            UrlError::BadHost => "has a host with brackets, '@', spaces or control characters",
            UrlError::UnclosedBracket => "has an unclosed [",
            UrlError::BadPort => "has a port that is not a number from 1 to 65535",
            UrlError::TrailingText => "has text after the bracketed address",
        })
    }
}

impl<'a> CloudUrl<'a> {
    pub fn parse(url: &'a str) -> Result<CloudUrl<'a>, UrlError> {
        let rest = url.strip_prefix("https://").ok_or(UrlError::NotHttps)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = match authority.strip_prefix('[') {
            Some(inner) => {
                let (host, after) = inner.split_once(']').ok_or(UrlError::UnclosedBracket)?;
                match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None if after.is_empty() => (host, None),
                    None => return Err(UrlError::TrailingText),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        if host
            .chars()
            .any(|c| matches!(c, '[' | ']' | '@') || c.is_whitespace() || c.is_control())
        {
            return Err(UrlError::BadHost);
        }
        let port = match port {
            None => HTTPS_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::BadPort),
                Ok(p) => p,
            },
        };
        Ok(CloudUrl { host, port })
    }

    /// Whether the host is an address rather than a name (TLS sends no
    /// server name for an address).
    pub fn host_is_address(&self) -> bool {
        self.host.parse::<core::net::IpAddr>().is_ok()
    }
}

/// `host[:port]` as the `Host` header and `CONNECT` want it: an IPv6 address
/// in brackets, the port left out when it is 443.
impl fmt::Display for CloudUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(self.host)?;
        }
        if self.port != HTTPS_PORT {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (&str, u16) {
        let u = CloudUrl::parse(url).unwrap();
        (u.host, u.port)
    }

    #[test]
    fn hosts_ports_and_paths() {
        assert_eq!(ok("https://cloud.example"), ("cloud.example", 443));
        assert_eq!(ok("https://cloud.example:8443/v1"), ("cloud.example", 8443));
        assert_eq!(ok("https://10.77.0.1:9443"), ("10.77.0.1", 9443));
        assert_eq!(ok("https://[::1]:9443/"), ("::1", 9443));
        assert_eq!(ok("https://[fe80::1]"), ("fe80::1", 443));
        assert!(
            CloudUrl::parse("https://10.0.0.1")
                .unwrap()
                .host_is_address()
        );
        assert!(
            !CloudUrl::parse("https://a.example")
                .unwrap()
                .host_is_address()
        );
    }

    #[test]
    fn what_is_refused_says_why() {
        assert_eq!(CloudUrl::parse("http://a"), Err(UrlError::NotHttps));
        assert_eq!(CloudUrl::parse("https://"), Err(UrlError::NoHost));
        assert_eq!(CloudUrl::parse("https://:443"), Err(UrlError::NoHost));
        assert_eq!(
            CloudUrl::parse("https://[::1"),
            Err(UrlError::UnclosedBracket)
        );
        assert_eq!(
            CloudUrl::parse("https://[::1]x"),
            Err(UrlError::TrailingText)
        );
        assert_eq!(CloudUrl::parse("https://a:0"), Err(UrlError::BadPort));
        assert_eq!(CloudUrl::parse("https://a:99999"), Err(UrlError::BadPort));
        assert_eq!(CloudUrl::parse("https://a:x"), Err(UrlError::BadPort));
        assert_eq!(CloudUrl::parse("https://u@a"), Err(UrlError::BadHost));
        assert_eq!(CloudUrl::parse("https://x]:y:5"), Err(UrlError::BadHost));
        assert_eq!(CloudUrl::parse("https://a b"), Err(UrlError::BadHost));
    }

    #[test]
    fn the_authority_is_written_back_as_headers_want_it() {
        let show = |u: &str| {
            use core::fmt::Write;
            let mut s = heapless::String::<64>::new();
            write!(s, "{}", CloudUrl::parse(u).unwrap()).unwrap();
            s
        };
        assert_eq!(show("https://a.example"), "a.example");
        assert_eq!(show("https://a.example:8443/x"), "a.example:8443");
        assert_eq!(show("https://[::1]:9443"), "[::1]:9443");
    }
}
