//! Signed audit checkpoints pushed off the machine as they are made (ROADMAP H1): each
//! checkpoint line is POSTed (`application/json`) to `[audit] checkpoint_webhook`, so someone
//! with root here cannot rewrite the log and its checkpoints together unseen. A thread of its
//! own with a bounded queue; retried with backoff; a failure is logged (the URL's path never)
//! and counted, never blocking the writer.

use flowguard_export::Transport;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

pub struct Pusher {
    tx: SyncSender<String>,
    thread: std::thread::JoinHandle<()>,
    pub failed: Arc<AtomicU64>,
}

const TRIES: [u64; 4] = [0, 500, 1000, 2000];

impl Pusher {
    pub fn start(url: String) -> Pusher {
        let (tx, rx) = sync_channel::<String>(1024);
        let failed = Arc::new(AtomicU64::new(0));
        let f = failed.clone();
        let thread = std::thread::Builder::new()
            .name("flowguard-checkpoints".into())
            .spawn(move || {
                let http = flowguard_export::PlainHttp;
                for line in rx {
                    let mut last = String::new();
                    let sent = TRIES.iter().any(|wait| {
                        std::thread::sleep(Duration::from_millis(*wait));
                        match http.post(&url, "application/json", &[], line.as_bytes(), Duration::from_secs(5)) {
                            Ok(s) if (200..300).contains(&s) => true,
                            Ok(s) => {
                                last = format!("the receiver answered {s}");
                                false
                            }
                            Err(e) => {
                                last = e;
                                false
                            }
                        }
                    });
                    if !sent {
                        f.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("audit: a checkpoint could not be pushed to {} ({last}); it is in the checkpoints file", flowguard_export::http::describe(&url));
                    }
                }
            })
            .expect("spawning the checkpoint pusher");
        Pusher { tx, thread, failed }
    }

    pub fn push(&self, line: String) {
        if self.tx.try_send(line).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!("audit: the checkpoint push queue is full; a checkpoint stays in the checkpoints file only");
        }
    }

    /// Sends what is queued (a few seconds at most).
    pub fn close(self) {
        drop(self.tx);
        flowguard_export::join_by(
            self.thread,
            std::time::Instant::now() + Duration::from_secs(5),
        );
    }
}
