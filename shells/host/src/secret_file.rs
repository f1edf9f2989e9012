//! Files that hold secrets (credential sets, a configuration with a token
//! or passwords) must be readable by their owner only.

/// The file's permission bits when others than its owner may use it;
/// `None` when only the owner may, or where the system has no such bits.
pub fn shared_mode(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}
