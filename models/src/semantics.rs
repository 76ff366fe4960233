//! Which containerd the model imitates. 1.6 and 1.7 share the metadata rules pushrace needs;
//! 2.x adds images as GC objects (an image with a passed `containerd.io/gc.expire` is collected)
//! and images as lease resources.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum Semantics {
    #[default]
    V1_6,
    V1_7,
    V2_0,
}

impl Semantics {
    /// 2.x: images are collectible nodes (`isExpiredImage` in core/metadata/gc.go) and can be leased.
    pub fn images_expire(self) -> bool {
        self >= Semantics::V2_0
    }

    /// Before containerd 1.6.26 / 1.7.6 the push annotate handler failed on a child's NotFound; the
    /// model's 1.6 and 1.7 stand for 1.6.20 and 1.7.0, so only 2.x ignores it.
    pub fn push_ignores_missing_child_info(self) -> bool {
        self >= Semantics::V2_0
    }
}

impl FromStr for Semantics {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.6" => Ok(Semantics::V1_6),
            "1.7" => Ok(Semantics::V1_7),
            "2.0" | "2" => Ok(Semantics::V2_0),
            _ => Err(format!(
                "unknown containerd semantics {s:?}: expected \"1.6\", \"1.7\" or \"2.0\""
            )),
        }
    }
}

impl fmt::Display for Semantics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Semantics::V1_6 => "1.6",
            Semantics::V1_7 => "1.7",
            Semantics::V2_0 => "2.0",
        })
    }
}
