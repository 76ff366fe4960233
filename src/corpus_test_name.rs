// Shared by the build script (which generates one test per corpus file) and `corpus::test_name`,
// so the generated names and the names the library looks for cannot drift apart.

/// The test function name for a corpus file name: `same-ref-lease-held.toml` →
/// `same_ref_lease_held` (non-identifier characters become `_`; a leading digit or a keyword
/// gets a prefix or suffix).
pub fn test_name(file_name: &str) -> String {
    let stem = file_name.strip_suffix(".toml").unwrap_or(file_name);
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "scenario_");
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
        "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "_",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}
