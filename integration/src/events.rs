//! `ctr events` as a test sees it: a subscriber whose lines arrive on a channel, and an ordered
//! subsequence check over the events that name one container.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::containerd::{ChildGuard, Containerd};

/// A `ctr events` subscriber whose lines arrive on a channel.
#[derive(Debug)]
pub struct Events {
    _child: ChildGuard,
    rx: mpsc::Receiver<String>,
    pub lines: Vec<String>,
}

impl Events {
    /// Subscribes and waits until the subscription demonstrably delivers:
    /// ctr prints nothing on subscribe, so we publish namespace label updates
    /// until one comes back.
    pub fn subscribe(cd: &Containerd) -> Events {
        let mut child = cd
            .ctr_command(&["events"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ctr events");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ev = Events {
            _child: ChildGuard(child),
            rx,
            lines: Vec::new(),
        };
        let start = Instant::now();
        for n in 0.. {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "ctr events never delivered a probe event"
            );
            cd.ctr_ok(&[
                "namespaces",
                "label",
                &cd.namespace,
                &format!("brisk.probe={n}"),
            ])
            .expect("label namespace");
            if ev.wait_for(Duration::from_millis(500), |l| {
                l.contains("/namespaces/update")
            }) {
                break;
            }
        }
        ev.lines.clear();
        ev
    }

    /// Collects lines until one satisfies `pred` or `timeout` passes.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        if self.lines.iter().any(|l| pred(l)) {
            return true;
        }
        while let Some(left) = timeout.checked_sub(start.elapsed()) {
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.lines.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// (topic, json) of every event that names container `id`.
    pub fn for_container(&self, id: &str) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| {
                let topic = l
                    .split_whitespace()
                    .find(|t| t.starts_with('/'))?
                    .to_string();
                let json = l[l.find('{')?..].to_string();
                let ours = json.contains(&format!("\"container_id\":\"{id}\""))
                    || json.contains(&format!("\"id\":\"{id}\""));
                ours.then_some((topic, json))
            })
            .collect()
    }
}

/// Finds `want` as an ordered subsequence of `events` (topic, JSON substring).
pub fn check_in_order(events: &[(String, String)], want: &[(&str, &str)]) -> Result<(), String> {
    let mut i = 0;
    for (topic, needle) in want {
        match events[i..]
            .iter()
            .position(|(t, j)| t == topic && j.contains(needle))
        {
            Some(p) => i += p + 1,
            None => {
                return Err(format!(
                    "missing {topic} containing {needle:?} after event #{i}; got:\n{events:#?}"
                ))
            }
        }
    }
    Ok(())
}

