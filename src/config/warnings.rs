//! Problems worth a warning that stop nothing: files holding credentials
//! that other users can read.

use std::path::Path;

/// A warning when `path` (holding credentials) exists and other users may
/// read or change it, naming the `chmod` that fixes it.
pub(super) fn exposed_file(what: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let shown = path.display().to_string();
    let quoted = if shown
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./=:@%+,".contains(c))
    {
        shown.clone()
    } else {
        format!("'{}'", shown.replace('\'', r"'\''"))
    };
    Some(format!(
        "{what} {shown} holds a credential and is open to other users (mode {mode:04o}: they can read or change it); run `chmod 600 {quoted}`"
    ))
}
