//! The process's stdin and stdout as the runtime's own non-blocking streams where they are
//! pipes or sockets (as every MCP client spawns a server), so a message in or out is one syscall
//! on the runtime's thread.
//!
//! **The behaviour compensated:** tokio's `stdin()`/`stdout()` (which rmcp's stdio transport
//! takes) hand each read and write to a blocking-pool thread: two thread switches per message,
//! which the profile showed costing more than all the proxy's own work. Anything else (a
//! terminal, a file) keeps tokio's streams. Both stdio servers take these: the proxy's and the
//! demo server's.
//!
//! **Dropping it:** when tokio's standard streams register pipes with the reactor themselves.

#[cfg(not(unix))]
pub use other::{stdin, stdout};
#[cfg(unix)]
pub use unix::{stdin, stdout};

#[cfg(unix)]
mod unix {
    use std::io::{Stdin, Stdout};
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tokio::io::{AsyncRead, AsyncWrite};

    /// What a standard stream is, and whether it may be made non-blocking.
    enum Kind {
        Pipe(OwnedFd),
        Socket(OwnedFd),
        Other,
    }

    /// Non-blocking mode belongs to the open file, shared by every descriptor of it. A stream that
    /// is also our stderr (`2>&1`) stays blocking, or log lines could fail with `EAGAIN`.
    fn kind(stream: BorrowedFd<'_>) -> Kind {
        let identity = |fd: BorrowedFd<'_>| {
            let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
            let metadata = file.metadata().ok()?;
            Some((metadata.dev(), metadata.ino(), metadata.file_type(), file))
        };
        let Some((dev, ino, file_type, file)) = identity(stream) else {
            return Kind::Other;
        };
        let stderr = identity(std::io::stderr().as_fd()).map(|(dev, ino, ..)| (dev, ino));
        if stderr == Some((dev, ino)) {
            Kind::Other
        } else if file_type.is_fifo() {
            Kind::Pipe(file.into())
        } else if file_type.is_socket() {
            Kind::Socket(file.into())
        } else {
            Kind::Other
        }
    }

    fn socket(fd: OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
        let stream = std::os::unix::net::UnixStream::from(fd);
        stream.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(stream)
    }

    /// The process's stdin: non-blocking where it is a pipe or a socket.
    pub fn stdin() -> Box<dyn AsyncRead + Send + Unpin> {
        let stream = match kind(Stdin::as_fd(&std::io::stdin())) {
            Kind::Pipe(fd) => tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
                .map(|pipe| Box::new(pipe) as Box<dyn AsyncRead + Send + Unpin>),
            Kind::Socket(fd) => socket(fd).map(|socket| Box::new(socket) as _),
            Kind::Other => return Box::new(tokio::io::stdin()),
        };
        stream.unwrap_or_else(|error| {
            tracing::debug!("stdin stays a blocking stream: {error}");
            Box::new(tokio::io::stdin())
        })
    }

    /// A page of 1,000 tools is ~350 KB; through the default 64 KiB pipe it leaves in pieces, each
    /// after the client has read the last one and the runtime has woken us again. A
    /// pipe of 1 MiB (the unprivileged limit) takes a page in one write. Best effort.
    fn widen(fd: OwnedFd) -> OwnedFd {
        #[cfg(target_os = "linux")]
        if let Err(error) = rustix::pipe::fcntl_setpipe_size(&fd, STDOUT_PIPE_BYTES) {
            tracing::debug!("stdout pipe keeps its size: {error}");
        }
        fd
    }

    #[cfg(target_os = "linux")]
    /// The stdout pipe's size we ask for (Linux's default `pipe-max-size` for unprivileged users).
    const STDOUT_PIPE_BYTES: usize = 1024 * 1024;

    /// The process's stdout: non-blocking (and widened) where it is a pipe or a socket.
    pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
        let stream = match kind(Stdout::as_fd(&std::io::stdout())) {
            Kind::Pipe(fd) => tokio::net::unix::pipe::Sender::from_owned_fd(widen(fd))
                .map(|pipe| Box::new(pipe) as Box<dyn AsyncWrite + Send + Unpin>),
            Kind::Socket(fd) => socket(fd).map(|socket| Box::new(socket) as _),
            Kind::Other => return Box::new(tokio::io::stdout()),
        };
        stream.unwrap_or_else(|error| {
            tracing::debug!("stdout stays a blocking stream: {error}");
            Box::new(tokio::io::stdout())
        })
    }
}

#[cfg(not(unix))]
mod other {
    use tokio::io::{AsyncRead, AsyncWrite};

    pub fn stdin() -> Box<dyn AsyncRead + Send + Unpin> {
        Box::new(tokio::io::stdin())
    }

    pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
        Box::new(tokio::io::stdout())
    }
}
