//! An accepted connection that tells the balancer when it closes.

use super::balance::Loads;
use crate::telemetry::names;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A connection that sends nothing for this long after it was accepted is closed. Without it a
/// silent client holds a slot forever and delays graceful shutdown until the drain timeout
/// (hyper waits for a pending HTTP/2 handshake before it shuts a connection down).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
use tonic::transport::server::{Connected, TcpConnectInfo};

thread_local! {
    /// Answers this worker produced since one of its connections last wrote to its socket.
    static UNWRITTEN_ANSWERS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts one answer produced on this worker (and not yet written by a connection).
pub fn answer_produced() {
    UNWRITTEN_ANSWERS.with(|n| n.set(n.get().saturating_add(1)));
}

/// Answers this worker produced since one of its connections last wrote. A request handler
/// that sees many yields first, so the connection task, queued behind the handlers it spawned,
/// writes the answers ready so far before more are computed: the client gets its answers as a
/// steady flow and sends the next requests meanwhile, instead of one burst per read that
/// leaves this core idle while the client turns around (one HTTP/2 connection could not fill a
/// core before this).
pub fn unwritten_answers() -> u32 {
    UNWRITTEN_ANSWERS.with(std::cell::Cell::get)
}

/// A TCP stream counted on its worker until dropped.
#[derive(Debug)]
pub struct CountedStream {
    inner: TcpStream,
    worker: usize,
    loads: Arc<Loads>,
    /// Pending until the first byte arrives; then `None`.
    first_byte_deadline: Option<Pin<Box<Sleep>>>,
}

impl CountedStream {
    /// Wraps a stream already counted on `worker` by [`Loads::assign`].
    pub fn new(inner: TcpStream, worker: usize, loads: Arc<Loads>) -> Self {
        publish(worker, &loads);
        CountedStream {
            inner,
            worker,
            loads,
            first_byte_deadline: Some(Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT))),
        }
    }
}

fn publish(worker: usize, loads: &Loads) {
    metrics::gauge!(names::WORKER_CONNECTIONS, names::labels::WORKER => worker.to_string())
        .set(loads.open(worker) as f64);
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.loads.release(self.worker);
        publish(self.worker, &self.loads);
    }
}

impl Connected for CountedStream {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.first_byte_deadline = None,
            Poll::Pending => {
                if let Some(deadline) = self.first_byte_deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no bytes received since the connection was accepted",
                    )));
                }
            }
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            UNWRITTEN_ANSWERS.with(|n| n.set(0));
        }
        written
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            UNWRITTEN_ANSWERS.with(|n| n.set(0));
        }
        written
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
