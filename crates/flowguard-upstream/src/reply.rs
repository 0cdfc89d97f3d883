//! The stream of one client request's replies: what the server sends about the request
//! (progress, logging, requests of its own), then the final reply. One is made for every
//! forwarded request, and most carry a single frame, so it is a queue under a lock with one
//! waker: a tokio mpsc channel allocates a block of 32 slots and a cache-padded channel for each
//! (docs/benchmarks.md, History).

use crate::Frame;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A new stream and the sink that feeds it.
pub fn reply_channel() -> (ReplySink, ReplyStream) {
    let shared = Arc::new(Mutex::new(State {
        frames: VecDeque::new(),
        waker: None,
        sinks: 1,
        open: true,
    }));
    (ReplySink(shared.clone()), ReplyStream(shared))
}

struct State {
    frames: VecDeque<Frame>,
    /// The reader waiting for a frame.
    waker: Option<Waker>,
    /// Live sinks; the stream ends when the last is gone and the queue is empty.
    sinks: usize,
    /// Whether the stream is still read.
    open: bool,
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every operation under this lock is a single queue or counter update: a panic elsewhere
    // cannot leave it half-done, so a poisoned lock is still consistent.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a request's frames go; cloned for every place that may answer it.
pub struct ReplySink(Arc<Mutex<State>>);

impl ReplySink {
    /// Queues a frame; gives it back when nobody reads the stream any more (the client went
    /// away).
    pub fn send(&self, frame: Frame) -> Result<(), Frame> {
        let mut state = lock(&self.0);
        if !state.open {
            return Err(frame);
        }
        state.frames.push_back(frame);
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl Clone for ReplySink {
    fn clone(&self) -> Self {
        lock(&self.0).sinks += 1;
        ReplySink(self.0.clone())
    }
}

impl Drop for ReplySink {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.sinks -= 1;
        let waker = (state.sinks == 0).then(|| state.waker.take()).flatten();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl std::fmt::Debug for ReplySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplySink")
    }
}

/// The reading end of a request's frames.
pub struct ReplyStream(Arc<Mutex<State>>);

impl ReplyStream {
    /// The next frame; `None` once every sink is gone and nothing is left. Cancel-safe: a frame
    /// is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<Frame> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let mut state = lock(&self.0);
        if let Some(frame) = state.frames.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if state.sinks == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.open = false;
        let frames = std::mem::take(&mut state.frames);
        drop(state);
        drop(frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn text(frame: Option<Frame>) -> String {
        match frame {
            Some(Frame::Message(b)) => format!("message {}", String::from_utf8_lossy(&b)),
            Some(Frame::Final(b)) => format!("final {}", String::from_utf8_lossy(&b)),
            None => "end".into(),
        }
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_the_stream_ends_with_its_last_sink() {
        let (sink, mut stream) = reply_channel();
        let other = sink.clone();
        sink.send(Frame::Message(Bytes::from_static(b"1"))).unwrap();
        other.send(Frame::Final(Bytes::from_static(b"2"))).unwrap();
        drop(sink);
        assert_eq!(text(stream.recv().await), "message 1");
        assert_eq!(text(stream.recv().await), "final 2");
        drop(other);
        assert_eq!(text(stream.recv().await), "end");
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_send_from_another_task() {
        let (sink, mut stream) = reply_channel();
        let reader = tokio::spawn(async move { text(stream.recv().await) });
        tokio::task::yield_now().await;
        tokio::spawn(async move { sink.send(Frame::Final(Bytes::from_static(b"ok"))) });
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
        assert_eq!(got.unwrap().unwrap(), "final ok");
    }

    #[tokio::test]
    async fn a_waiting_reader_sees_the_end_when_the_last_sink_goes() {
        let (sink, mut stream) = reply_channel();
        let reader = tokio::spawn(async move { text(stream.recv().await) });
        tokio::task::yield_now().await;
        drop(sink);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
        assert_eq!(got.unwrap().unwrap(), "end");
    }

    #[test]
    fn sending_after_the_reader_left_gives_the_frame_back() {
        let (sink, stream) = reply_channel();
        drop(stream);
        let back = sink.send(Frame::Final(Bytes::from_static(b"late")));
        assert!(matches!(back, Err(Frame::Final(b)) if &b[..] == b"late"));
    }
}
