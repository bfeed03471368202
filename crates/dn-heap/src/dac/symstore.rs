//! Symbol stores: the key Microsoft's symbol server (and `dotnet-symbol`'s cache) files a
//! runtime's DAC under, and fetching it from an `http://` server into a local cache.
//!
//! The key is `libmscordaccore.so/elf-buildid-coreclr-<libcoreclr build id>/libmscordaccore.so`:
//! the DAC is filed under the build id of the runtime it reads, so finding it under that key is
//! what makes it the matching one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::DAC_FILE;

/// A DAC is ~10 MB; a reply larger than this is not a DAC.
const MAX_DAC_BYTES: u64 = 256 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

/// The symbol-store key of the DAC for the runtime with this (hex) build id. Ids shorter than
/// 20 bytes are padded with zero bytes, as the store's key generator does.
pub fn dac_key(coreclr_build_id: &str) -> String {
    let mut id = coreclr_build_id.to_ascii_lowercase();
    while id.len() < 40 {
        id.push('0');
    }
    format!("{DAC_FILE}/elf-buildid-coreclr-{id}/{DAC_FILE}")
}

/// Where the DAC for `build_id` sits in a folder laid out as a symbol store.
pub fn dac_in_store(dir: &Path, build_id: &str) -> PathBuf {
    dir.join(dac_key(build_id))
}

/// Why a download did not give a DAC.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: only http:// symbol servers are supported (this build has no TLS); download the DAC yourself into a --symbol-path folder")]
    Unsupported(String),
    #[error("{url}: not on the server (HTTP 404)")]
    NotFound { url: String },
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Downloads the DAC for `build_id` from `server` into `cache` (symbol-store layout). The file
/// appears whole or not at all: it is written beside its place and renamed when complete.
pub fn fetch_dac(server: &str, build_id: &str, cache: &Path) -> Result<PathBuf, FetchError> {
    if !server.starts_with("http://") {
        return Err(FetchError::Unsupported(server.to_string()));
    }
    let url = format!("{}/{}", server.trim_end_matches('/'), dac_key(build_id));
    let failed = |reason: String| FetchError::Failed {
        url: url.clone(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut reply = agent.get(&url).call().map_err(|e| failed(e.to_string()))?;
    match reply.status().as_u16() {
        200 => {}
        404 => return Err(FetchError::NotFound { url }),
        s => return Err(failed(format!("HTTP {s}"))),
    }
    let dest = dac_in_store(cache, build_id);
    let dir = dest.parent().unwrap_or(cache);
    let write_err = |path: &Path, source| FetchError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let partial = dir.join(format!(".{DAC_FILE}.partial-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&partial).map_err(|e| write_err(&partial, e))?;
        let mut body = reply.body_mut().with_config().limit(MAX_DAC_BYTES).reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body.read(&mut buf).map_err(|e| failed(e.to_string()))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])
                .map_err(|e| write_err(&partial, e))?;
        }
        file.sync_all().map_err(|e| write_err(&partial, e))?;
        std::fs::rename(&partial, &dest).map_err(|e| write_err(&dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|()| dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_coreclr_build_id_under_the_dac_name() {
        assert_eq!(
            dac_key("0DA63843bf6011305b4d9ed2f178448acb81f223"),
            "libmscordaccore.so/elf-buildid-coreclr-0da63843bf6011305b4d9ed2f178448acb81f223/libmscordaccore.so"
        );
        // Short ids are padded to 20 bytes.
        assert_eq!(
            dac_key("abcd"),
            format!(
                "libmscordaccore.so/elf-buildid-coreclr-abcd{}/libmscordaccore.so",
                "0".repeat(36)
            )
        );
    }

    #[test]
    fn a_dead_server_is_one_clear_line_and_leaves_no_file() {
        // Port 9 (discard) on the loopback: nothing listens there.
        let cache = tempfile::tempdir().unwrap();
        let e = fetch_dac("http://127.0.0.1:9", "ab", cache.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("http://127.0.0.1:9/libmscordaccore.so/elf-buildid-coreclr-ab"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    #[test]
    fn https_is_refused_with_a_clear_reason() {
        let e = fetch_dac(
            "https://msdl.microsoft.com/download/symbols",
            "ab",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("only http://"), "{e}");
    }
}
