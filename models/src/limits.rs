//! Input size limits, shared by every front end (the command line, scenario and ops files, OCI
//! layouts, CI logs, the library). Each is refused as bad input naming the file, key or flag
//! (exit status 2 on the command line), never allocated first. The README's "Limits" section
//! lists them all. Search bounds (preemptions, budgets) are not limited here: a deep search is a
//! legitimate request, and stops on its execution budget or wall-time backstop instead.

/// Platforms of one image (a scenario's `[[image]]`, an ops file's `image.pull`, a layout's
/// index), and so of one push or convert.
pub const MAX_PLATFORMS: usize = 64;

/// Layers per platform of a fixture image: a scenario's `[[image]] layers` and an ops file's
/// `image.pull layers` (one range for both formats; see [`crate::oci::DEFAULT_LAYERS`]).
pub const MAX_LAYERS: usize = 16;

/// Operations in one ops file or one scenario `ops` actor.
pub const MAX_OPS: usize = 1_000;

/// Commands of one command actor (`command`, `commands` and `finally` together), arguments of
/// one command, and bytes of one argument.
pub const MAX_COMMANDS: usize = 16;
pub const MAX_COMMAND_ARGS: usize = 256;
pub const MAX_ARG_BYTES: usize = 4096;

/// Bytes of a scenario file, an ops file, an OCI layout's `oci-layout`, `index.json` and its
/// index, manifest and config blobs.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Bytes of a CI log given to `triage`.
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// Bytes of one layer blob of an OCI layout (it is read whole, to verify its digest).
pub const MAX_BLOB_BYTES: u64 = 256 << 20;

/// Reads a regular file of at most `max` bytes. A FIFO, a device, a directory or a socket is
/// refused before it is opened for reading (so `/dev/zero` or a FIFO cannot hang or fill
/// memory), and the size is checked before reading (and again while reading, for a file that
/// grows). The error says what is wrong, without the path (the caller names the file).
pub fn read_regular(path: &std::path::Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("not a regular file ({})", file_kind(&meta)));
    }
    if meta.len() > max {
        return Err(format!("{} bytes: at most {max} are read", meta.len()));
    }
    let f = open_nonblocking(path).map_err(|e| e.to_string())?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if data.len() as u64 > max {
        return Err(format!("more than {max} bytes: at most {max} are read"));
    }
    Ok(data)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &std::path::Path, max: u64) -> Result<String, String> {
    utf8_text(read_regular(path, max)?)
}

/// The bytes as text; invalid UTF-8 is refused naming the line and byte offset of the first bad
/// byte (`not UTF-8 text: line 2, byte offset 11: invalid byte 0xff`).
pub fn utf8_text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = line_at(bytes, at);
        let bad = bytes
            .get(at)
            .map_or(String::new(), |b| format!(": invalid byte 0x{b:02x}"));
        format!("not UTF-8 text: line {line}, byte offset {at}{bad}")
    })
}

/// The 1-based line of byte `offset` in `text` (a serde span's start, a UTF-8 error's offset):
/// the one way every input names a line. Counts bytes, so `offset` need not be a char boundary.
pub fn line_at(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Opens for reading without blocking on a FIFO swapped in after the check.
fn open_nonblocking(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(0o4000); // O_NONBLOCK: a FIFO opened for reading does not wait for a writer
    }
    let f = o.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("pushrace-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("small");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"12345");
        assert!(read_regular(&f, 4).unwrap_err().contains("at most 4"));
        assert!(read_regular(&dir, 10).unwrap_err().contains("a directory"));
        #[cfg(unix)]
        assert!(read_regular(std::path::Path::new("/dev/zero"), 10)
            .unwrap_err()
            .contains("a device"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_utf8_names_its_line_and_byte_offset() {
        let e = utf8_text(b"a = 1\nb = \"\xff\"\n".to_vec()).unwrap_err();
        assert_eq!(
            e,
            "not UTF-8 text: line 2, byte offset 11: invalid byte 0xff"
        );
        assert_eq!(utf8_text(b"ok".to_vec()).unwrap(), "ok");
    }
}
