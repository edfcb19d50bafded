//! A lab's state file (`/run/vpnmon-lab/NAME.json` by default): what the
//! separate `vpnmon lab ...` invocations share. Its presence is also what
//! marks a namespace as a vpnmon lab, so `down` never removes a namespace
//! it did not create.

use crate::LabError;
use crate::group::{Groups, Impairments, TargetGroup};
use crate::lab::Replies;
use crate::process::ProcessId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LabState {
    pub version: u32,
    pub name: String,
    pub groups: Vec<GroupEntry>,
    pub replies: Replies,
    /// The responder last started, while `replies` is `Responder`.
    pub responder: Option<ResponderRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupEntry {
    pub targets: TargetGroup,
    #[serde(flatten)]
    pub impairments: Impairments,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResponderRecord {
    #[serde(flatten)]
    pub process: ProcessId,
    /// The responder's arguments, to tell whether a change needs a restart.
    pub args: Vec<String>,
}

impl LabState {
    pub fn new(name: &str) -> Self {
        LabState {
            version: VERSION,
            name: name.to_owned(),
            groups: Vec::new(),
            replies: Replies::Kernel,
            responder: None,
        }
    }

    pub fn groups(&self) -> Groups {
        self.groups
            .iter()
            .map(|e| (e.targets, e.impairments))
            .collect()
    }

    pub fn set_groups(&mut self, groups: &Groups) {
        self.groups = groups
            .iter()
            .map(|(g, i)| GroupEntry {
                targets: *g,
                impairments: *i,
            })
            .collect();
    }
}

pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

pub(crate) fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.responder.log"))
}

pub(crate) fn load(dir: &Path, name: &str) -> Result<Option<LabState>, LabError> {
    let path = path(dir, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LabError::io(format!("read {}", path.display()), e)),
    };
    let state: LabState =
        serde_json::from_str(&text).map_err(|source| LabError::State { path, source })?;
    Ok(Some(state))
}

/// Writes the state atomically (temporary file, then rename).
pub(crate) fn save(dir: &Path, state: &LabState) -> Result<(), LabError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let path = path(dir, &state.name);
    let tmp = dir.join(format!(".{}.json.tmp", state.name));
    let text = serde_json::to_string_pretty(state).map_err(|source| LabError::State {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&tmp, text + "\n")
        .map_err(|e| LabError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| LabError::io(format!("rename to {}", path.display()), e))
}

/// Removes the state and log files (missing ones are fine).
pub(crate) fn remove(dir: &Path, name: &str) -> Result<(), LabError> {
    for p in [path(dir, name), log_path(dir, name)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io(format!("remove {}", p.display()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Loss, LossMode};

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("vpnmon-lab-state-{}", std::process::id()));
        let mut s = LabState::new("t1");
        let mut groups = Groups::new();
        groups.insert(
            TargetGroup::parse("198.18.1.0/24").unwrap(),
            Impairments {
                loss: Some(Loss::new(30, LossMode::Random).unwrap()),
                delay: None,
            },
        );
        s.set_groups(&groups);
        s.replies = Replies::Responder;
        s.responder = Some(ResponderRecord {
            process: ProcessId {
                pid: 42,
                start_ticks: 7,
            },
            args: vec!["--seed".into(), "1".into()],
        });
        save(&dir, &s).unwrap();
        let back = load(&dir, "t1").unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.groups(), groups);
        let text = std::fs::read_to_string(path(&dir, "t1")).unwrap();
        assert!(text.contains(r#""targets": "198.18.1.0/24""#), "{text}");
        assert!(text.contains(r#""pid": 42"#), "{text}");
        remove(&dir, "t1").unwrap();
        assert_eq!(load(&dir, "t1").unwrap(), None);
        remove(&dir, "t1").unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }
}
