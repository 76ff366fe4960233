//! Schedules: the sequence of actors picked at successive scheduling points, with a compact
//! printable form that parses back.
//!
//! Compact form: `s1:<actors>:<body>`. `s1` is the format version; `<actors>` is the number of
//! actors of the program (so a schedule for another program is rejected with a clear message);
//! the body is a run-length list of actors: `a`..`z` are actors 0..25, `A`..`Z` 26..51,
//! `{n}` any index, and an optional decimal count repeats it. `s1:2:a2ba` is 0,0,1,0.
//! Readable form: one `actor` (or `actor: label`) per line, as printed by a text trace.

use std::fmt;

/// A schedule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Schedule {
    /// Number of actors in the program the schedule was taken from.
    pub actors: usize,
    /// Actor picked at each step.
    pub steps: Vec<usize>,
}

/// A schedule string that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The input (shortened if long).
    pub input: String,
    /// Character position (0-based) where parsing failed.
    pub position: usize,
    /// What was expected and found.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "schedule {:?}: position {}: {}",
            self.input, self.position, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// The most steps a parsed schedule may have (all repeat counts together): a longer one is
/// refused rather than allocated.
pub const MAX_SCHEDULE_STEPS: usize = 1_000_000;

/// The longest schedule text [`Schedule::parse`] reads, in bytes.
pub const MAX_SCHEDULE_TEXT: usize = 4 << 20;

fn actor_char(i: usize) -> Option<char> {
    match i {
        0..=25 => Some((b'a' + i as u8) as char),
        26..=51 => Some((b'A' + (i - 26) as u8) as char),
        _ => None,
    }
}

impl Schedule {
    /// A schedule from actor indices.
    pub fn new(actors: usize, steps: Vec<usize>) -> Self {
        Schedule { actors, steps }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Number of context switches (not all are preemptions: switching away from a finished or
    /// blocked actor is free; the executor counts true preemptions).
    pub fn switches(&self) -> usize {
        self.steps.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// The compact string.
    pub fn encode(&self) -> String {
        let mut s = format!("s1:{}:", self.actors);
        let mut i = 0;
        while i < self.steps.len() {
            let a = self.steps[i];
            let mut j = i;
            while j < self.steps.len() && self.steps[j] == a {
                j += 1;
            }
            match actor_char(a) {
                Some(c) => s.push(c),
                None => s.push_str(&format!("{{{a}}}")),
            }
            if j - i > 1 {
                s.push_str(&(j - i).to_string());
            }
            i = j;
        }
        s
    }

    /// Parses the compact string. Never panics; errors name the position and what was wrong.
    pub fn parse(input: &str) -> Result<Schedule, ParseError> {
        let shown: String = if input.chars().count() > 80 {
            input.chars().take(77).chain("...".chars()).collect()
        } else {
            input.to_string()
        };
        let err = |position: usize, message: String| ParseError {
            input: shown.clone(),
            position,
            message,
        };
        if input.len() > MAX_SCHEDULE_TEXT {
            return Err(err(
                0,
                format!(
                    "{} bytes: a schedule is at most {MAX_SCHEDULE_TEXT}",
                    input.len()
                ),
            ));
        }
        let chars: Vec<char> = input.trim_end().chars().collect();
        let lead = input.len() - input.trim_start().len();
        let chars = &chars[lead.min(chars.len())..];
        let mut pos = 0;
        let expect = |pos: &mut usize, c: char| -> Result<(), ParseError> {
            match chars.get(*pos) {
                Some(&x) if x == c => {
                    *pos += 1;
                    Ok(())
                }
                Some(&x) => Err(err(*pos + lead, format!("expected {c:?}, found {x:?}"))),
                None => Err(err(
                    *pos + lead,
                    format!("expected {c:?}, found end of input"),
                )),
            }
        };
        expect(&mut pos, 's')?;
        match chars.get(pos) {
            Some('1') => pos += 1,
            Some(c) => {
                return Err(err(
                    pos + lead,
                    format!(
                        "unsupported schedule format version {c:?} (this build reads version 1)"
                    ),
                ))
            }
            None => {
                return Err(err(
                    pos + lead,
                    "expected a format version, found end of input".into(),
                ))
            }
        }
        expect(&mut pos, ':')?;
        let number = |pos: &mut usize| -> Option<usize> {
            let start = *pos;
            let mut v: usize = 0;
            while let Some(d) = chars.get(*pos).and_then(|c| c.to_digit(10)) {
                v = v.checked_mul(10)?.checked_add(d as usize)?;
                *pos += 1;
            }
            (*pos > start).then_some(v)
        };
        let start = pos;
        let actors = number(&mut pos)
            .ok_or_else(|| err(start + lead, "expected the number of actors".into()))?;
        if actors == 0 || actors > crate::executor::MAX_ACTORS {
            return Err(err(
                start + lead,
                format!(
                    "the number of actors must be 1..={}, found {actors}",
                    crate::executor::MAX_ACTORS
                ),
            ));
        }
        expect(&mut pos, ':')?;
        let mut steps = Vec::new();
        while pos < chars.len() {
            let at = pos;
            let c = chars[pos];
            let a = match c {
                'a'..='z' => {
                    pos += 1;
                    c as usize - 'a' as usize
                }
                'A'..='Z' => {
                    pos += 1;
                    c as usize - 'A' as usize + 26
                }
                '{' => {
                    pos += 1;
                    let n = number(&mut pos).ok_or_else(|| {
                        err(pos + lead, "expected an actor index after '{'".into())
                    })?;
                    expect(&mut pos, '}')?;
                    n
                }
                other => {
                    return Err(err(
                        at + lead,
                        format!("expected an actor (a-z, A-Z or {{n}}), found {other:?}"),
                    ))
                }
            };
            if a >= actors {
                return Err(err(
                    at + lead,
                    format!("expected an actor index below {actors}, found {a}"),
                ));
            }
            let cpos = pos;
            let count = match number(&mut pos) {
                Some(0) => {
                    return Err(err(cpos + lead, "a repeat count must be at least 1".into()))
                }
                Some(n) if n > 10_000_000 => {
                    return Err(err(cpos + lead, format!("repeat count {n} is too large")))
                }
                Some(n) => n,
                None => 1,
            };
            if count > MAX_SCHEDULE_STEPS - steps.len() {
                return Err(err(
                    cpos + lead,
                    format!("the schedule is longer than {MAX_SCHEDULE_STEPS} steps"),
                ));
            }
            steps.extend(std::iter::repeat(a).take(count));
        }
        Ok(Schedule { actors, steps })
    }

    /// Readable lines, one actor name per step.
    pub fn to_lines(&self, names: &[String]) -> String {
        let mut s = String::new();
        for &a in &self.steps {
            s.push_str(names.get(a).map(String::as_str).unwrap_or("?"));
            s.push('\n');
        }
        s
    }

    /// Parses readable lines: each non-empty line is `actor` or `actor: anything` (optionally
    /// preceded by a step number, as in a text trace); `#` starts a comment line.
    pub fn parse_lines(text: &str, names: &[String]) -> Result<Schedule, ParseError> {
        let mut steps = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let t = t
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            let name = t.split(':').next().unwrap_or("").trim();
            match names.iter().position(|n| n == name) {
                Some(i) => steps.push(i),
                None => {
                    return Err(ParseError {
                        input: format!("line {}", lineno + 1),
                        position: 0,
                        message: format!("unknown actor {name:?} (actors: {})", names.join(", ")),
                    })
                }
            }
        }
        Ok(Schedule {
            actors: names.len(),
            steps,
        })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl std::str::FromStr for Schedule {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Schedule::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Schedule::new(60, vec![0, 0, 1, 0, 27, 27, 27, 55, 3]);
        let e = s.encode();
        assert_eq!(e, "s1:60:a2baB3{55}d");
        assert_eq!(Schedule::parse(&e).unwrap(), s);
        assert_eq!(Schedule::parse("s1:1:").unwrap().steps, Vec::<usize>::new());
    }

    #[test]
    fn errors_name_position() {
        let e = Schedule::parse("s1:2:abh").unwrap_err();
        assert_eq!(
            e.to_string(),
            "schedule \"s1:2:abh\": position 7: expected an actor index below 2, found 7"
        );
        assert!(Schedule::parse("s2:2:a")
            .unwrap_err()
            .message
            .contains("version"));
        assert!(Schedule::parse("s1:2:a0")
            .unwrap_err()
            .message
            .contains("at least 1"));
        assert!(Schedule::parse("s1:2:a?")
            .unwrap_err()
            .message
            .contains("found '?'"));
        assert!(Schedule::parse("s1:x").is_err());
        assert!(Schedule::parse("").is_err());
        assert!(Schedule::parse("s1:2:{99999999999999999999999}").is_err());
        assert!(Schedule::parse("s1:2:{1").is_err());
        assert!(Schedule::parse("s1:2:a99999999999").is_err());
        assert!(Schedule::parse("s1:2:é").is_err());
        // The total, not only each count, is capped (issue 14: 40 x a10000000 allocated 5 GB).
        let long = format!("s1:1:{}", "a9999999".repeat(16_000));
        assert!(Schedule::parse(&long)
            .unwrap_err()
            .message
            .contains("longer than 1000000 steps"));
        assert!(Schedule::parse(&format!("s1:1:a{MAX_SCHEDULE_STEPS}")).is_ok());
        assert!(Schedule::parse(&format!("s1:1:a{MAX_SCHEDULE_STEPS}a")).is_err());
    }

    #[test]
    fn lines_round_trip() {
        let names = vec!["push-a".to_string(), "push-b".to_string()];
        let s = Schedule::new(2, vec![0, 1, 1]);
        assert_eq!(
            Schedule::parse_lines(&s.to_lines(&names), &names).unwrap(),
            s
        );
        let t = "  0  push-a: content.read x\n  1  push-b: y\n";
        assert_eq!(Schedule::parse_lines(t, &names).unwrap().steps, vec![0, 1]);
        assert!(Schedule::parse_lines("gc\n", &names)
            .unwrap_err()
            .to_string()
            .contains("unknown actor \"gc\""));
    }
}
