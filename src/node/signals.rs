//! Signals for the event loop: SIGTERM and SIGINT ask the node to leave, SIGHUP to reopen its
//! log. Each sets a flag and writes to a self-pipe the loop polls, so the loop clears the pipe
//! first and then acts on the flags (signal-hook's advice), never inside the handler.
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The flags and the read end of the self-pipe.
pub struct Signals {
    wake: UnixStream,
    terminate: Arc<AtomicBool>,
    hangup: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers and registers the pipe as `token`.
    pub fn register(registry: &Registry, token: Token) -> io::Result<Signals> {
        let (read_end, write_end) = std::os::unix::net::UnixStream::pair()?;
        read_end.set_nonblocking(true)?;
        let terminate = Arc::new(AtomicBool::new(false));
        let hangup = Arc::new(AtomicBool::new(false));
        for signal in [libc::SIGTERM, libc::SIGINT] {
            signal_hook::flag::register(signal, terminate.clone())?;
            signal_hook::low_level::pipe::register(signal, write_end.try_clone()?)?;
        }
        signal_hook::flag::register(libc::SIGHUP, hangup.clone())?;
        signal_hook::low_level::pipe::register(libc::SIGHUP, write_end)?;
        let mut wake = UnixStream::from_std(read_end);
        registry.register(&mut wake, token, Interest::READABLE)?;
        Ok(Signals {
            wake,
            terminate,
            hangup,
        })
    }

    /// Empties the self-pipe; call on its readiness, before looking at the flags.
    pub fn drain(&mut self) {
        let mut buffer = [0u8; 64];
        loop {
            match self.wake.read(&mut buffer) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Whether SIGTERM or SIGINT arrived since the last call.
    pub fn take_terminate(&self) -> bool {
        self.terminate.swap(false, Ordering::SeqCst)
    }

    /// Whether SIGHUP arrived since the last call.
    pub fn take_hangup(&self) -> bool {
        self.hangup.swap(false, Ordering::SeqCst)
    }
}
