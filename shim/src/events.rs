//! Task events to containerd: the per-container ordering rules ([`Sequencer`]) and one FIFO
//! publisher queue ([`Publisher`]) that forwards them to containerd's ttrpc events service.
//!
//! Required order (containerd's task manager and CRI rely on it): TaskCreate → TaskStart → TaskExit →
//! TaskDelete for the init; TaskExecAdded → TaskExecStarted → TaskExit for an exec; TaskOOM before the
//! init's TaskExit; and the init's TaskExit after every started exec's TaskExit (docs/ARCHITECTURE.md, design rule 2).
//! Events are enqueued under the service lock in the order they must arrive, and one task drains the
//! queue in order, so the queue order is the wire order.
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::ttrpc;
use tokio::sync::mpsc;

pub const TOPIC_CREATE: &str = "/tasks/create";
pub const TOPIC_START: &str = "/tasks/start";
pub const TOPIC_EXIT: &str = "/tasks/exit";
pub const TOPIC_DELETE: &str = "/tasks/delete";
pub const TOPIC_EXEC_ADDED: &str = "/tasks/exec-added";
pub const TOPIC_EXEC_STARTED: &str = "/tasks/exec-started";
pub const TOPIC_PAUSED: &str = "/tasks/paused";
pub const TOPIC_RESUMED: &str = "/tasks/resumed";
pub const TOPIC_OOM: &str = "/tasks/oom";

/// Which process of a container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProcKey {
    Init,
    Exec(String),
}

/// How and when a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub pid: u32,
    pub status: u32,
    pub at: SystemTime,
}

/// What the caller must do, in this order, under the same lock that fed the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Mark the process exited (wake its waiters) and enqueue its TaskExit.
    Exit(ProcKey, ExitInfo),
    /// Mark the init exited without an event (a never-started init removed by Delete).
    SilentExit(ProcKey, ExitInfo),
    /// Enqueue TaskOOM.
    Oom,
}

/// Per-container ordering of exits. Pure state: no I/O, so the rules are unit-tested.
#[derive(Debug, Default)]
pub struct Sequencer {
    /// Processes whose start is in flight: their start event is not enqueued yet, so an exit is held.
    starting: HashSet<ProcKey>,
    /// Execs started (or starting) whose TaskExit is not enqueued yet; the init's exit waits for them.
    live_execs: HashSet<String>,
    held: Vec<(ProcKey, ExitInfo)>,
    init_exit_released: bool,
    /// Delete removed a never-started init: its exit gets no TaskExit.
    silence_init: bool,
}

impl Sequencer {
    pub fn begin_start(&mut self, key: ProcKey) {
        if let ProcKey::Exec(id) = &key {
            self.live_execs.insert(id.clone());
        }
        self.starting.insert(key);
    }

    /// The start finished (its start event, if any, is already enqueued).
    pub fn end_start(&mut self, key: ProcKey, started: bool) -> Vec<Action> {
        self.starting.remove(&key);
        if let ProcKey::Exec(id) = &key {
            let exit_seen = self.held.iter().any(|(k, _)| k == &key);
            if !started && !exit_seen {
                self.live_execs.remove(id);
            }
        }
        self.release()
    }

    /// The reaper attributed an exit to `key`.
    pub fn exited(&mut self, key: ProcKey, info: ExitInfo) -> Vec<Action> {
        if key == ProcKey::Init && self.init_exit_released {
            return Vec::new();
        }
        self.held.push((key, info));
        self.release()
    }

    /// An OOM notification: it must reach containerd before the init's TaskExit.
    pub fn oom(&mut self) -> Vec<Action> {
        if self.init_exit_released {
            Vec::new()
        } else {
            vec![Action::Oom]
        }
    }

    /// Delete of a never-started init: its coming exit is not a task exit.
    pub fn silence_init_exit(&mut self) -> Vec<Action> {
        self.silence_init = true;
        self.release()
    }

    pub fn is_starting(&self, key: &ProcKey) -> bool {
        self.starting.contains(key)
    }

    pub fn init_exit_released(&self) -> bool {
        self.init_exit_released
    }

    fn release(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (key, info) in std::mem::take(&mut self.held) {
            match &key {
                ProcKey::Exec(id) if !self.starting.contains(&key) => {
                    self.live_execs.remove(id);
                    out.push(Action::Exit(key, info));
                }
                _ => keep.push((key, info)),
            }
        }
        for (key, info) in keep {
            let ready =
                key == ProcKey::Init && !self.starting.contains(&key) && self.live_execs.is_empty();
            if ready && !self.init_exit_released {
                self.init_exit_released = true;
                if self.silence_init {
                    out.push(Action::SilentExit(key, info));
                } else {
                    out.push(Action::Exit(key, info));
                }
            } else if !ready {
                self.held.push((key, info));
            }
        }
        out
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

/// The event type of each topic. Spelled out rather than taken from the message descriptor:
/// building protobuf reflection tables costs the shim about a megabyte of heap.
const TOPIC_TYPES: [(&str, &str); 9] = [
    (TOPIC_CREATE, "containerd.events.TaskCreate"),
    (TOPIC_START, "containerd.events.TaskStart"),
    (TOPIC_EXIT, "containerd.events.TaskExit"),
    (TOPIC_DELETE, "containerd.events.TaskDelete"),
    (TOPIC_EXEC_ADDED, "containerd.events.TaskExecAdded"),
    (TOPIC_EXEC_STARTED, "containerd.events.TaskExecStarted"),
    (TOPIC_PAUSED, "containerd.events.TaskPaused"),
    (TOPIC_RESUMED, "containerd.events.TaskResumed"),
    (TOPIC_OOM, "containerd.events.TaskOOM"),
];

fn type_of(topic: &str) -> &'static str {
    TOPIC_TYPES
        .iter()
        .find(|(t, _)| *t == topic)
        .map(|(_, n)| *n)
        .unwrap_or("")
}

/// A message packed the way containerd's typeurl expects: the bare proto name as type URL.
pub fn to_any(type_name: &str, msg: &dyn MessageDyn) -> Any {
    let mut value = Vec::new();
    // Writing a generated message into a Vec cannot fail.
    let _ = msg.write_to_vec_dyn(&mut value);
    Any {
        type_url: type_name.to_string(),
        value,
        ..Default::default()
    }
}

#[derive(Debug)]
struct Item {
    topic: &'static str,
    event: Any,
    at: SystemTime,
}

/// The ordered publisher queue. Cloning shares the queue.
#[derive(Clone, Debug)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Item>,
}

/// The draining side, run as one task by the server.
#[derive(Debug)]
pub struct Drain {
    rx: mpsc::UnboundedReceiver<Item>,
    address: String,
    namespace: String,
}

impl Publisher {
    pub fn new(address: &str, namespace: &str) -> (Publisher, Drain) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Publisher { tx },
            Drain {
                rx,
                address: address.trim_start_matches("unix://").to_string(),
                namespace: namespace.to_string(),
            },
        )
    }

    pub fn publish(&self, topic: &'static str, msg: &dyn MessageDyn) {
        let item = Item {
            topic,
            event: to_any(type_of(topic), msg),
            at: SystemTime::now(),
        };
        if self.tx.send(item).is_err() {
            log::warn!("event {topic} dropped: publisher stopped");
        }
    }
}

/// About 15 s of retries: longer than a containerd restart takes.
const ATTEMPTS: u32 = 10;

impl Drain {
    /// The topic of the next queued event, if any (tests inspect the queue without containerd).
    #[cfg(test)]
    pub fn try_next_topic(&mut self) -> Option<&'static str> {
        self.rx.try_recv().ok().map(|i| i.topic)
    }

    /// Forward events in queue order. A failed forward is retried (reconnecting) before the next
    /// event is sent, so a containerd restart delays events but does not reorder them; after
    /// [`ATTEMPTS`] failures the event is dropped, as containerd's own publisher does.
    pub async fn run(mut self) {
        let mut client: Option<EventsClient> = None;
        while let Some(item) = self.rx.recv().await {
            let req = ForwardRequest {
                envelope: Some(Envelope {
                    timestamp: Some(timestamp(item.at)).into(),
                    namespace: self.namespace.clone(),
                    topic: item.topic.to_string(),
                    event: Some(item.event).into(),
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            };
            let mut attempt = 0;
            loop {
                if client.is_none() {
                    client = connect(&self.address)
                        .await
                        .map_err(|e| log::debug!("events connect {}: {e}", self.address))
                        .ok();
                }
                if let Some(c) = &client {
                    let mut ctx =
                        ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64);
                    ctx.add(
                        "containerd-namespace-ttrpc".to_string(),
                        self.namespace.clone(),
                    );
                    match tokio::time::timeout(Duration::from_secs(6), c.forward(ctx, &req)).await {
                        Ok(Ok(_)) => break,
                        Ok(Err(ttrpc::Error::RpcStatus(st))) => {
                            // containerd answered and refused it: retrying cannot help, and
                            // would hold up every later event.
                            log::error!(
                                "event {} rejected by containerd: {}",
                                item.topic,
                                st.message
                            );
                            break;
                        }
                        Ok(Err(e)) => log::warn!("forward {}: {e}", item.topic),
                        Err(_) => log::warn!("forward {}: timed out", item.topic),
                    }
                    client = None;
                }
                attempt += 1;
                if attempt >= ATTEMPTS {
                    log::error!("event {} dropped after {ATTEMPTS} attempts", item.topic);
                    break;
                }
                tokio::time::sleep(
                    (Duration::from_millis(500) * attempt).min(Duration::from_secs(2)),
                )
                .await;
            }
        }
    }
}

async fn connect(path: &str) -> std::io::Result<EventsClient> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let socket = ttrpc::r#async::transport::Socket::from(stream);
    Ok(EventsClient::new(Client::new(socket)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pid: u32) -> ExitInfo {
        ExitInfo {
            pid,
            status: 0,
            at: SystemTime::UNIX_EPOCH,
        }
    }
    fn exec(id: &str) -> ProcKey {
        ProcKey::Exec(id.to_string())
    }

    #[test]
    fn init_exit_waits_for_running_execs() {
        let mut s = Sequencer::default();
        s.begin_start(exec("e1"));
        assert!(s.end_start(exec("e1"), true).is_empty());
        // The init dies first (its pid namespace takes the exec down a moment later).
        assert!(s.exited(ProcKey::Init, info(1)).is_empty());
        assert_eq!(
            s.exited(exec("e1"), info(2)),
            vec![
                Action::Exit(exec("e1"), info(2)),
                Action::Exit(ProcKey::Init, info(1))
            ]
        );
        assert!(s.init_exit_released());
        // A duplicate init exit is ignored.
        assert!(s.exited(ProcKey::Init, info(1)).is_empty());
    }

    #[test]
    fn exit_during_start_is_held_until_start_event() {
        let mut s = Sequencer::default();
        s.begin_start(ProcKey::Init);
        assert!(s.exited(ProcKey::Init, info(1)).is_empty());
        assert_eq!(
            s.end_start(ProcKey::Init, true),
            vec![Action::Exit(ProcKey::Init, info(1))]
        );

        let mut s = Sequencer::default();
        s.begin_start(exec("e"));
        assert!(s.exited(exec("e"), info(5)).is_empty());
        assert_eq!(
            s.end_start(exec("e"), true),
            vec![Action::Exit(exec("e"), info(5))]
        );
    }

    #[test]
    fn failed_exec_start_does_not_block_init_exit() {
        let mut s = Sequencer::default();
        s.begin_start(exec("e"));
        assert!(s.exited(ProcKey::Init, info(1)).is_empty());
        assert_eq!(
            s.end_start(exec("e"), false),
            vec![Action::Exit(ProcKey::Init, info(1))]
        );
    }

    #[test]
    fn several_execs_then_init_in_order() {
        let mut s = Sequencer::default();
        for e in ["a", "b"] {
            s.begin_start(exec(e));
            s.end_start(exec(e), true);
        }
        assert!(s.exited(ProcKey::Init, info(1)).is_empty());
        assert_eq!(
            s.exited(exec("b"), info(3)),
            vec![Action::Exit(exec("b"), info(3))]
        );
        assert_eq!(
            s.exited(exec("a"), info(2)),
            vec![
                Action::Exit(exec("a"), info(2)),
                Action::Exit(ProcKey::Init, info(1))
            ]
        );
    }

    #[test]
    fn oom_only_before_init_exit() {
        let mut s = Sequencer::default();
        assert_eq!(s.oom(), vec![Action::Oom]);
        s.exited(ProcKey::Init, info(1));
        assert!(s.oom().is_empty());
    }

    #[test]
    fn silenced_init_exit_has_no_event() {
        let mut s = Sequencer::default();
        assert!(s.silence_init_exit().is_empty());
        assert_eq!(
            s.exited(ProcKey::Init, info(1)),
            vec![Action::SilentExit(ProcKey::Init, info(1))]
        );
    }

    #[test]
    fn topic_types_match_the_protos() {
        use containerd_shim_protos::events::task::*;
        use containerd_shim_protos::protobuf::MessageFull;
        let want = [
            (TOPIC_CREATE, TaskCreate::descriptor()),
            (TOPIC_START, TaskStart::descriptor()),
            (TOPIC_EXIT, TaskExit::descriptor()),
            (TOPIC_DELETE, TaskDelete::descriptor()),
            (TOPIC_EXEC_ADDED, TaskExecAdded::descriptor()),
            (TOPIC_EXEC_STARTED, TaskExecStarted::descriptor()),
            (TOPIC_PAUSED, TaskPaused::descriptor()),
            (TOPIC_RESUMED, TaskResumed::descriptor()),
            (TOPIC_OOM, TaskOOM::descriptor()),
        ];
        for (topic, d) in want {
            assert_eq!(type_of(topic), d.full_name(), "{topic}");
        }
        assert_eq!(
            crate::service::PROCESS_DETAILS_TYPE,
            <containerd_shim_protos::shim::oci::ProcessDetails as MessageFull>::descriptor()
                .full_name()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn queue_keeps_enqueue_order() {
        use containerd_shim_protos::events::task::{TaskCreate, TaskStart};
        let (p, mut d) = Publisher::new("unix:///nonexistent", "ns");
        assert_eq!(d.address, "/nonexistent");
        p.publish(TOPIC_CREATE, &TaskCreate::default());
        p.publish(TOPIC_START, &TaskStart::default());
        assert_eq!(d.rx.recv().await.unwrap().topic, TOPIC_CREATE);
        assert_eq!(d.rx.recv().await.unwrap().topic, TOPIC_START);
    }
}
