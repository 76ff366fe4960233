//! Logs as people paste them from a CI log viewer: undoing the viewer's layout before the lines
//! are read. Two layouts are recognised:
//!
//! - `table-wrapped`: a table of rows `date | … | text |` (a date column and `|` separators
//!   before each row, a trailing `|`), where a long text is wrapped at the column's width over
//!   several rows, mid-word or mid-digest. The text cells are joined back into log lines.
//! - `gh-run-view`: `gh run view --log`, each line `job<TAB>step<TAB>timestamp line`; the job
//!   and step fields are removed (the timestamp is then a GitHub Actions one).

/// `job\tstep\t2025-08-19T10:01:02.1234567Z …`: the line after the job and step fields.
pub fn strip_gh_run_view(line: &str) -> Option<&str> {
    let (_job, rest) = line.split_once('\t')?;
    let (_step, rest) = rest.split_once('\t')?;
    let b = rest.as_bytes();
    let stamp = b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    (stamp && b[10] == b'T').then_some(rest)
}

/// A date or time cell: `Tue, 19 Aug 2025 10:01:02 GMT`, `2025-08-19T10:01:02Z`, `10:01:02`.
fn is_date(cell: &str) -> bool {
    let c = cell.trim();
    let digits = c.bytes().filter(u8::is_ascii_digit).count();
    c.len() <= 40
        && c.contains(':')
        && digits >= 6
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || " ,:.+-/".contains(ch))
}

/// One table row: its text cell (the cells after the leading date and empty ones, trimmed)
/// and the padding before the trailing `|` (at most 1: the text filled its cell).
fn row_text(line: &str) -> Option<(&str, usize)> {
    let body = line.trim_end().strip_suffix('|')?;
    let pad = body.len() - body.trim_end().len();
    let mut text = body;
    while let Some((cell, rest)) = text.split_once('|') {
        if !(cell.trim().is_empty() || is_date(cell)) {
            break;
        }
        text = rest;
    }
    Some((text.trim(), pad))
}

/// Whether a row starts with a date cell: what tells a viewer's table from a progress bar.
fn dated_row(line: &str) -> bool {
    line.trim_end().ends_with('|') && line.split_once('|').is_some_and(|(c, _)| is_date(c))
}

/// A log line left open: an odd number of unescaped quotes, or an unclosed JSON object.
fn open_ended(s: &str) -> bool {
    let (mut quotes, mut depth, mut escaped) = (0usize, 0i64, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quotes += 1,
            '{' if quotes % 2 == 0 => depth += 1,
            '}' if quotes % 2 == 0 => depth -= 1,
            _ => {}
        }
    }
    quotes % 2 == 1 || (s.starts_with('{') && depth > 0)
}

/// What a new log line starts with (so that a full-width row before it is not glued to it).
fn starts_line(s: &str) -> bool {
    let b = s.as_bytes();
    let tag = b.len() > 5 && b[4] == b'[' && b[..4].iter().all(u8::is_ascii_uppercase);
    let stamp = b.len() > 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    tag || stamp
        || ["time=", "{", "===", "---", "+ "]
            .iter()
            .any(|p| s.starts_with(p))
}

/// The logical lines of a `table-wrapped` log, each with the number of its first physical
/// line; `None` when the text is not such a table (no dated row, or rows are not most lines).
pub fn unwrap_table(text: &str) -> Option<Vec<(usize, String)>> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let nonblank = lines.iter().filter(|l| !l.trim().is_empty()).count();
    let rows = lines.iter().filter(|l| l.trim_end().ends_with('|')).count();
    if rows < 2 || rows * 2 < nonblank || !lines.iter().any(|l| dated_row(l)) {
        return None;
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    // Whether the last logical line is a row, and whether its last piece filled its cell.
    let (mut in_row, mut hard) = (false, false);
    for (i, line) in lines.iter().enumerate() {
        let Some((piece, pad)) = row_text(line) else {
            out.push((i + 1, line.to_string()));
            in_row = false;
            continue;
        };
        match out.last_mut() {
            Some((_, prev))
                if in_row
                    && !piece.is_empty()
                    && (open_ended(prev) || (hard && !starts_line(piece))) =>
            {
                if !hard {
                    prev.push(' ');
                }
                prev.push_str(piece);
            }
            _ => out.push((i + 1, piece.to_string())),
        }
        (in_row, hard) = (true, pad <= 1);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_table_row_is_joined_mid_digest() {
        let text = "time=\"2025-08-19T10:01:02Z\" level=fatal msg=\"content digest sha256:0123456789abcdef0123456789abcdef0123 |\nTue, 19 Aug 2025 10:01:02 GMT         |         | 456789abcdef0123456789abcdef: not found\"                    |\n";
        let lines = unwrap_table(text).unwrap();
        assert_eq!(lines[0].0, 1);
        assert_eq!(
            lines[0].1,
            "time=\"2025-08-19T10:01:02Z\" level=fatal msg=\"content digest sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef: not found\""
        );
    }

    #[test]
    fn a_progress_bar_is_not_a_table() {
        let text = "index-sha256:83bf:    waiting        |--------------------------------------|\nlayer-sha256:83bf:    waiting        |--------------------------------------|\n";
        assert_eq!(unwrap_table(text), None);
    }

    #[test]
    fn gh_run_view_fields_are_removed() {
        let l = "build\tRun tests\t2025-08-19T10:01:02.1234567Z time=\"x\" level=fatal";
        assert_eq!(
            strip_gh_run_view(l),
            Some("2025-08-19T10:01:02.1234567Z time=\"x\" level=fatal")
        );
        assert_eq!(strip_gh_run_view("a\tb\tc"), None);
    }
}
