//! One client connection: reads size-prefixed request frames, hands each to
//! `dispatch` in arrival order and writes the responses in that same order
//! (clients may pipeline; like Kafka we process one request of a connection
//! at a time, which also keeps an idempotent producer's batches in order).
//! Frames over `socket.request.max.bytes`, garbage framing and idle
//! connections close this connection only.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::dispatch::{self, Outcome};
use super::listener::ListenerInfo;
use crate::broker::Broker;

/// Read-side buffer: small frames are read in few syscalls; large ones
/// bypass it.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Smallest legal frame: api key, version and correlation id.
const MIN_FRAME_BYTES: usize = 8;

pub struct Connection {
    socket: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<ListenerInfo>,
    shutdown: CancellationToken,
}

impl Connection {
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        listener: Arc<ListenerInfo>,
        shutdown: CancellationToken,
    ) -> Connection {
        Connection { socket, peer, broker, listener, shutdown }
    }

    pub async fn run(self) {
        let peer = self.peer;
        let broker = self.broker.clone();
        broker.metrics.connections_accepted.fetch_add(1, Ordering::Relaxed);
        broker.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        match self.serve().await {
            Ok(()) => tracing::debug!(%peer, "connection closed"),
            Err(reason) => tracing::debug!(%peer, %reason, "connection closed"),
        }
        broker.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve(self) -> Result<(), String> {
        let Connection { socket, peer, broker, listener, shutdown } = self;
        let limits = broker.limits().clone();
        let idle = Duration::from_millis(limits.connections_max_idle_ms.max(1));
        let (rd, mut wr) = socket.into_split();
        let mut rd = BufReader::with_capacity(READ_BUFFER_BYTES, rd);
        loop {
            let mut size_buf = [0u8; 4];
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = tokio::time::timeout(idle, rd.read_exact(&mut size_buf)) => match r {
                    Err(_) => return Err("idle timeout".into()),
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Ok(Err(e)) => return Err(e.to_string()),
                    Ok(Ok(_)) => {}
                },
            }
            let size = i32::from_be_bytes(size_buf);
            if size < MIN_FRAME_BYTES as i32 || size as usize > limits.request_max_bytes {
                return Err(format!("invalid frame size {size} (socket.request.max.bytes = {})", limits.request_max_bytes));
            }
            let size = size as usize;
            // Memory for queued request bytes is bounded broker-wide.
            let permit = broker
                .request_memory()
                .acquire_many(size.min(limits.queued_max_request_bytes) as u32)
                .await
                .map_err(|_| "shutting down".to_string())?;
            let mut frame = BytesMut::zeroed(size);
            match tokio::time::timeout(idle, rd.read_exact(&mut frame)).await {
                Err(_) => return Err("timed out reading a request".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(_)) => {}
            }
            let api_key = i16::from_be_bytes([frame[0], frame[1]]);
            let api_version = i16::from_be_bytes([frame[2], frame[3]]);
            let started = Instant::now();
            let outcome = dispatch::handle_frame(&broker, &listener, peer, frame.freeze()).await;
            broker.metrics.request(api_key, started.elapsed(), matches!(outcome, Outcome::Close(_)));
            tracing::trace!(%peer, api_key, api_version, elapsed_us = started.elapsed().as_micros() as u64, "request");
            drop(permit);
            match outcome {
                Outcome::Respond(chunks) => write_frame(&mut wr, chunks).await.map_err(|e| e.to_string())?,
                Outcome::NoResponse => {}
                Outcome::Close(reason) => return Err(reason),
            }
        }
    }
}

/// Writes `[size][chunks...]` with vectored writes, without joining chunks.
async fn write_frame(wr: &mut OwnedWriteHalf, chunks: Vec<Bytes>) -> std::io::Result<()> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let size = (total as u32).to_be_bytes();
    if chunks.len() == 1 && total <= 64 * 1024 {
        // Common small case: one syscall with the size prefix in front.
        let mut buf = BytesMut::with_capacity(4 + total);
        buf.extend_from_slice(&size);
        buf.extend_from_slice(&chunks[0]);
        return wr.write_all(&buf).await;
    }
    let mut parts: Vec<Bytes> = Vec::with_capacity(chunks.len() + 1);
    parts.push(Bytes::copy_from_slice(&size));
    parts.extend(chunks);
    let mut idx = 0;
    let mut offset = 0;
    while idx < parts.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&parts[idx][offset..]))
            .chain(parts[idx + 1..].iter().take(63).map(|b| IoSlice::new(b)))
            .collect();
        let mut written = wr.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 && idx < parts.len() {
            let left = parts[idx].len() - offset;
            if written >= left {
                written -= left;
                idx += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}
