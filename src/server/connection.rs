//! One client connection: reads size-prefixed request frames, hands each to
//! `dispatch` in arrival order and writes the responses in that same order
//! (clients may pipeline; like Kafka we process one request of a connection
//! at a time, which also keeps an idempotent producer's batches in order).
//! Frames over `socket.request.max.bytes`, garbage framing and idle
//! connections close this connection only. A frame's memory is reserved
//! as its bytes arrive (see `quotas`); a response the client does not read
//! within `klamm.socket.write.timeout.ms` closes the connection.
//! On SSL and SASL_SSL listeners the TLS handshake comes first, within
//! `TLS_HANDSHAKE_TIMEOUT_MS` (and `connections.max.idle.ms`); the request
//! loop is the same code over either stream, monomorphised, so the
//! plaintext path keeps its owned socket halves. There, record bytes of a
//! segment log (large Fetch payloads) go from the file to the socket with
//! `sendfile(2)`, as Kafka's `transferTo`, instead of being copied out of
//! the mapping ([`crate::storage::mmap::file_range`]); TLS encrypts in
//! user space and writes every byte itself.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::dispatch::{self, Outcome};
use super::listener::{ListenerInfo, SHUTDOWN_WRITE_GRACE_MS};
use super::quotas::{FrameMemory, IpSlot, FRAME_CHUNK_BYTES};
use crate::broker::Broker;
use crate::platform;
use crate::security::authorizer::ANONYMOUS;
use crate::storage::mmap::{self, FileRange};

/// Read-side buffer: small frames are read in few syscalls; large ones
/// bypass it.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Smallest legal frame: api key, version and correlation id.
const MIN_FRAME_BYTES: usize = 8;

/// A TLS handshake must complete within this long (or
/// `connections.max.idle.ms`, if shorter): a client that connects and
/// says nothing, or too little, is dropped.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// Chunks of a response at least this large that are a segment log's
/// bytes go out with `sendfile` on plaintext sockets; smaller ones are
/// written with the rest (a system call of their own would cost more than
/// the copy saves).
const SEND_FILE_MIN_BYTES: usize = 16 * 1024;

/// The write side of a connection: plaintext sockets can take file ranges
/// with `sendfile`, TLS streams cannot (they encrypt in user space).
pub(super) trait ResponseSink: AsyncWrite + Unpin {
    /// The TCP socket to `sendfile` into, if bytes may bypass user space.
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl ResponseSink for OwnedWriteHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: AsyncRead + AsyncWrite> ResponseSink for tokio::io::WriteHalf<S> {}

pub struct Connection {
    socket: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<ListenerInfo>,
    shutdown: CancellationToken,
    /// This connection's place in its IP's quotas.
    slot: IpSlot,
}

impl Connection {
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        listener: Arc<ListenerInfo>,
        shutdown: CancellationToken,
        slot: IpSlot,
    ) -> Connection {
        Connection { socket, peer, broker, listener, shutdown, slot }
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
        let Connection { socket, peer, broker, listener, shutdown, slot } = self;
        let Some(tls) = listener.tls.clone() else {
            let (rd, wr) = socket.into_split();
            return serve_stream(rd, wr, peer, ANONYMOUS.to_string(), broker, listener, shutdown, slot).await;
        };
        let idle_ms = broker.limits().connections_max_idle_ms.max(1);
        let handshake = Duration::from_millis(idle_ms.min(TLS_HANDSHAKE_TIMEOUT_MS));
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = tokio::time::timeout(handshake, tls.acceptor.accept(socket)) => match r {
                Err(_) => {
                    broker.metrics.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(format!("no TLS handshake within {} ms", handshake.as_millis()));
                }
                Ok(Err(e)) => {
                    // As Kafka (at INFO): the reason a client could not connect.
                    tracing::info!(%peer, listener = %listener.name, error = %e, "failed authentication (SSL handshake failed)");
                    broker.metrics.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(format!("TLS handshake failed: {e}"));
                }
                Ok(Ok(s)) => s,
            },
        };
        let principal = match tls.principal(stream.get_ref().1.peer_certificates()) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(%peer, listener = %listener.name, error = %e, "failed authentication");
                return Err(e);
            }
        };
        tracing::debug!(%peer, listener = %listener.name, %principal, "TLS session established");
        let (rd, wr) = tokio::io::split(stream);
        serve_stream(rd, wr, peer, principal, broker, listener, shutdown, slot).await
    }
}

/// Serves requests over one connection's stream halves until it closes.
/// `principal` is the connection's until a SASL authentication replaces it.
#[allow(clippy::too_many_arguments)]
async fn serve_stream<R, W>(
    rd: R,
    mut wr: W,
    peer: SocketAddr,
    mut principal: String,
    broker: Arc<Broker>,
    listener: Arc<ListenerInfo>,
    shutdown: CancellationToken,
    slot: IpSlot,
) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: ResponseSink,
{
    {
        let limits = broker.limits().clone();
        let idle = Duration::from_millis(limits.connections_max_idle_ms.max(1));
        let write_stall = Duration::from_millis(limits.write_timeout_ms.max(1));
        let mut rd = BufReader::with_capacity(READ_BUFFER_BYTES, rd);
        // SASL listeners: nothing but the SASL requests until authenticated.
        let mut sasl = listener.sasl.clone().map(crate::security::sasl::Session::new);
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
            let min_frame_bytes = match &sasl {
                Some(s) if super::sasl::expects_raw_token(s) => 1,
                _ => MIN_FRAME_BYTES,
            };
            if size < min_frame_bytes as i32 || size as usize > limits.request_max_bytes {
                return Err(format!("invalid frame size {size} (socket.request.max.bytes = {})", limits.request_max_bytes));
            }
            // As Kafka: an unauthenticated client's frames are bounded by
            // sasl.server.max.receive.size (512 KiB), not the request limit.
            if sasl.as_ref().is_some_and(|s| !s.is_authenticated()) {
                let max = broker.config().sasl_server_max_receive_size;
                if size as usize > max {
                    return Err(format!("a {size}-byte frame before SASL authentication (sasl.server.max.receive.size = {max})"));
                }
            }
            let size = size as usize;
            // Memory is reserved as the body arrives, from the IP's budget
            // and the broker-wide pool (small frames from their own share); while either is exhausted this
            // connection is not read (muted), unless it holds the broker's
            // overdraft, which keeps frames that fill the pool together from
            // waiting on each other forever (see `quotas`). The whole frame,
            // waits for memory included, must arrive within
            // connections.max.idle.ms.
            let mut memory = FrameMemory::new(
                broker.request_pools().for_frame(size),
                slot.memory().clone(),
                limits.queued_max_request_bytes_per_ip,
            );
            let frame = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = tokio::time::timeout(idle, read_body(&mut rd, size, &mut memory)) => match r {
                    Err(_) => return Err("timed out reading a request".into()),
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(frame)) => frame,
                },
            };
            let api_key = if frame.len() >= 4 { i16::from_be_bytes([frame[0], frame[1]]) } else { -1 };
            let api_version = if frame.len() >= 4 { i16::from_be_bytes([frame[2], frame[3]]) } else { -1 };
            let started = Instant::now();
            // The memory goes with the frame: dispatch returns it once the
            // request is decoded (Produce: once it is appended).
            let outcome = match sasl.as_mut() {
                Some(s) if !s.is_authenticated() => {
                    let outcome =
                        super::sasl::handle_unauthenticated(&broker, &listener, peer, s, frame.freeze(), memory).await;
                    if let Some(p) = s.principal() {
                        principal = p;
                    }
                    outcome
                }
                _ => dispatch::handle_frame(&broker, &listener, peer, &principal, frame.freeze(), memory).await,
            };
            let handled = started.elapsed();
            broker.metrics.request(api_key, handled, matches!(outcome, Outcome::Close(_) | Outcome::RespondThenClose(..)));
            let (chunks, then_close) = match outcome {
                Outcome::Respond(chunks) => (chunks, None),
                Outcome::RespondThenClose(chunks, reason) => (chunks, Some(reason)),
                Outcome::NoResponse => {
                    tracing::trace!(%peer, api_key, api_version, elapsed_us = handled.as_micros() as u64, "request");
                    continue;
                }
                Outcome::Close(reason) => return Err(reason),
            };
            {
                {
                    // A client that stopped reading is dropped after the
                    // write timeout; at shutdown, after a short grace.
                    let grace = async {
                        shutdown.cancelled().await;
                        tokio::time::sleep(Duration::from_millis(SHUTDOWN_WRITE_GRACE_MS)).await;
                    };
                    tokio::select! {
                        r = tokio::time::timeout(idle, write_frame(&mut wr, chunks, write_stall)) => match r {
                            Err(_) => return Err("a response took longer than connections.max.idle.ms to write".into()),
                            Ok(Err(WriteError::Stalled(reason))) => {
                                broker.metrics.write_timeouts.fetch_add(1, Ordering::Relaxed);
                                return Err(reason);
                            }
                            Ok(Err(WriteError::Io(reason))) => return Err(reason),
                            Ok(Ok(())) => {}
                        },
                        _ = grace => return Err("shutting down with a response still unwritten".into()),
                    }
                }
            }
            // Where a request's time goes: handling (a Fetch's read
            // included), then writing the response (waiting for the client
            // to read it included).
            tracing::trace!(
                %peer,
                api_key,
                api_version,
                elapsed_us = handled.as_micros() as u64,
                write_us = (started.elapsed() - handled).as_micros() as u64,
                "request"
            );
            if let Some(reason) = then_close {
                let _ = wr.flush().await;
                return Err(reason);
            }
        }
    }
}

/// Reads a frame body of `size` bytes. The buffer starts at one chunk and
/// doubles as it fills, and `memory` is grown before the buffer, so what
/// is reserved (and allocated) is at most twice what has arrived, or one
/// chunk.
async fn read_body<R: AsyncRead + Unpin>(rd: &mut R, size: usize, memory: &mut FrameMemory) -> Result<BytesMut, String> {
    let mut frame = BytesMut::new();
    let mut reserved_bytes = 0usize;
    while frame.len() < size {
        if frame.len() == reserved_bytes {
            let target = size.min(reserved_bytes.saturating_mul(2).max(FRAME_CHUNK_BYTES));
            memory.grow(target - reserved_bytes).await.map_err(|_| "request memory is closed".to_string())?;
            let mut bigger = BytesMut::with_capacity(target);
            bigger.extend_from_slice(&frame);
            frame = bigger;
            reserved_bytes = target;
        }
        let room = (reserved_bytes - frame.len()) as u64;
        let n = (&mut *rd).take(room).read_buf(&mut frame).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed after {} of a {size}-byte request", frame.len()));
        }
    }
    Ok(frame)
}

/// Why a response could not be written.
enum WriteError {
    /// No progress within the write timeout: the client stopped reading.
    Stalled(String),
    Io(String),
}

/// Writes `[size][chunks...]` with vectored writes, without joining
/// chunks; on a plaintext socket, large chunks that are bytes of a segment
/// log are sent from the file with `sendfile` in between. Each write must
/// make progress within `stall`, or the client is taken to have stopped
/// reading.
async fn write_frame<W: ResponseSink>(wr: &mut W, chunks: Vec<Bytes>, stall: Duration) -> Result<(), WriteError> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let size = (total as u32).to_be_bytes();
    let mut parts: Vec<Bytes> = Vec::with_capacity(chunks.len() + 1);
    if chunks.len() == 1 && total <= 64 * 1024 {
        // Common small case: one syscall with the size prefix in front.
        let mut buf = BytesMut::with_capacity(4 + total);
        buf.extend_from_slice(&size);
        buf.extend_from_slice(&chunks[0]);
        parts.push(buf.freeze());
    } else {
        parts.push(Bytes::copy_from_slice(&size));
        parts.extend(chunks);
    }
    // Runs of chunks written from memory, each followed by at most one
    // range sent from its file. The chunks stay alive until written, and
    // with them the maps (and descriptors) they came from.
    let file_ranges: Vec<Option<FileRange>> = match wr.tcp() {
        Some(_) if platform::SEND_FILE => parts
            .iter()
            .map(|p| if p.len() >= SEND_FILE_MIN_BYTES { mmap::file_range(p) } else { None })
            .collect(),
        _ => Vec::new(),
    };
    let mut from = 0;
    for (at, range) in file_ranges.iter().enumerate() {
        if let Some(range) = range {
            write_vectored_all(wr, &parts[from..at], stall).await?;
            match wr.tcp() {
                Some(socket) => send_file_all(socket, range, stall).await?,
                None => write_vectored_all(wr, &parts[at..=at], stall).await?,
            }
            from = at + 1;
        }
    }
    write_vectored_all(wr, &parts[from..], stall).await?;
    // TLS holds records it could not write yet until flushed (a no-op on
    // a TCP socket).
    match tokio::time::timeout(stall, wr.flush()).await {
        Err(_) => Err(stalled(stall)),
        Ok(r) => r.map_err(|e| WriteError::Io(e.to_string())),
    }
}

fn stalled(stall: Duration) -> WriteError {
    WriteError::Stalled(format!(
        "the client read nothing of a response for {} ms (klamm.socket.write.timeout.ms)",
        stall.as_millis()
    ))
}

/// Writes every byte of `parts`, 64 slices at a time.
async fn write_vectored_all<W: AsyncWrite + Unpin>(wr: &mut W, parts: &[Bytes], stall: Duration) -> Result<(), WriteError> {
    let mut idx = 0;
    let mut offset = 0;
    while idx < parts.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&parts[idx][offset..]))
            .chain(parts[idx + 1..].iter().take(63).map(|b| IoSlice::new(b)))
            .collect();
        let mut written = match tokio::time::timeout(stall, wr.write_vectored(&slices)).await {
            Err(_) => return Err(stalled(stall)),
            Ok(r) => r.map_err(|e| WriteError::Io(e.to_string()))?,
        };
        if written == 0 && slices.iter().any(|s| !s.is_empty()) {
            return Err(WriteError::Io("the socket accepted no bytes of a response".into()));
        }
        while idx < parts.len() && (written > 0 || parts[idx].len() == offset) {
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

/// Sends `range` from its file with `sendfile` on the non-blocking socket,
/// waiting for writability in between. The pages were made resident when
/// the fetch read them (`MappedRange::prefault`, on a blocking thread), so
/// this copies from the page cache without waiting for the disk. A file
/// that ends early (cut under klamm by someone else) or a read error
/// breaks the response: the connection is closed rather than the frame
/// completed with other bytes.
async fn send_file_all(socket: &TcpStream, range: &FileRange, stall: Duration) -> Result<(), WriteError> {
    let mut sent = 0;
    while sent < range.len {
        match tokio::time::timeout(stall, socket.writable()).await {
            Err(_) => return Err(stalled(stall)),
            Ok(r) => r.map_err(|e| WriteError::Io(e.to_string()))?,
        }
        let at = range.offset + sent as u64;
        match socket.try_io(Interest::WRITABLE, || platform::send_file(socket.as_fd(), &range.file, at, range.len - sent)) {
            Ok(0) => return Err(WriteError::Io(format!("the log file ended {} bytes into a {}-byte range being sent", sent, range.len))),
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WriteError::Io(format!("sendfile: {e}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mmap::{MappedFile, WriteMode};

    /// A connected pair: the broker's write half and the client's stream.
    async fn pair() -> (OwnedWriteHalf, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server.into_split().1, client)
    }

    /// A log of `len` bytes written with `pwrite`, and its bytes.
    fn log(dir: &std::path::Path, len: usize) -> (MappedFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        let mut m = MappedFile::create(&dir.join("00000000000000000000.log"), len, WriteMode::Pwrite).unwrap();
        m.append(&data).unwrap();
        (m, data)
    }

    #[tokio::test]
    async fn log_bytes_are_sent_from_the_file_exactly_even_after_the_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (m, data) = log(dir.path(), 3 << 20);
        let records = m.slice_bytes(1000, 2 << 20).unwrap();
        assert!(mmap::file_range(&records).is_some());
        drop(m);
        // Retention deleted the segment while the response was on its way.
        std::fs::remove_file(dir.path().join("00000000000000000000.log")).unwrap();
        let chunks = vec![Bytes::from_static(b"head"), records, Bytes::from_static(b"tail")];
        let (mut wr, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_frame(&mut wr, chunks, Duration::from_secs(10)).await.map_err(|_| "write failed").unwrap();
        drop(wr);
        let got = reader.await.unwrap();
        let body = 4 + (2 << 20) + 4;
        assert_eq!(got.len(), 4 + body);
        assert_eq!(&got[..4], &(body as u32).to_be_bytes());
        assert_eq!(&got[4..8], b"head");
        assert!(got[8..8 + (2 << 20)] == data[1000..1000 + (2 << 20)], "the file's bytes, in order");
        assert_eq!(&got[8 + (2 << 20)..], b"tail");
    }

    #[tokio::test]
    async fn a_log_cut_under_a_response_fails_the_write_instead_of_sending_other_bytes() {
        if !platform::SEND_FILE {
            return; // written from the map, where a cut file is SIGBUS
        }
        let dir = tempfile::tempdir().unwrap();
        let (m, data) = log(dir.path(), 1 << 20);
        let records = m.slice_bytes(0, 1 << 20).unwrap();
        // Someone else cuts the file (klamm never cuts published bytes).
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("00000000000000000000.log"))
            .unwrap()
            .set_len(100_000)
            .unwrap();
        let (mut wr, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        });
        let sent = write_frame(&mut wr, vec![Bytes::from_static(b"head"), records], Duration::from_secs(10)).await;
        assert!(matches!(sent, Err(WriteError::Io(_))), "a short file is an error");
        drop(wr);
        let got = reader.await.unwrap();
        assert!(got.len() < 4 + 4 + (1 << 20), "the frame is never completed");
        assert!(got[8..] == data[..got.len() - 8], "what was sent are the file's bytes");
        drop(m);
    }

    #[tokio::test]
    async fn small_and_foreign_chunks_are_written_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (m, data) = log(dir.path(), 64 * 1024);
        let small = m.slice_bytes(0, 100).unwrap();
        let heap = Bytes::from(vec![9u8; 100_000]);
        let (mut wr, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_frame(&mut wr, vec![small, heap, Bytes::new()], Duration::from_secs(10)).await.map_err(|_| "write failed").unwrap();
        drop(wr);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 4 + 100 + 100_000);
        assert_eq!(&got[4..104], &data[..100]);
        assert!(got[104..].iter().all(|&b| b == 9));
    }
}
