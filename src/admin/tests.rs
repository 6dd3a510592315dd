//! The admin server and client together: a mio loop on a thread answers like a daemon would.
use super::client::{request, ClientError};
use super::server::{AdminServer, AdminSocketError};
use mio::{Events, Poll, Token};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("admin.sock")
}

/// Serves `echo WORDS` (answers the words), `fail` (an error), `follow` (three streamed lines).
fn serve(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let mut poll = Poll::new().expect("poll");
    let mut server = AdminServer::bind(&path, poll.registry(), Token(0), 1).expect("bind");
    std::thread::spawn(move || {
        let mut events = Events::with_capacity(16);
        while !stop.load(Ordering::Relaxed) {
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .expect("poll");
            for event in events.iter() {
                server.ready(poll.registry(), event.token());
            }
            while let Some(request) = server.next_request() {
                let registry = poll.registry();
                match request.words.first().map(String::as_str) {
                    Some("echo") => server.respond(
                        registry,
                        request.connection,
                        Ok(request.words[1..].join(" ") + "\n"),
                    ),
                    Some("follow") => {
                        server.stream(registry, request.connection, "ok\n");
                        for line in ["one\n", "two\n", "three\n"] {
                            server.stream(registry, request.connection, line);
                        }
                    }
                    _ => {
                        server.respond(registry, request.connection, Err("no such command".into()))
                    }
                }
            }
        }
    })
}

#[test]
fn answers_refusals_and_streams() {
    let path = socket_path("answers");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = serve(path.clone(), stop.clone());
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is private");

    let mut lines = Vec::new();
    request(
        &path,
        &["echo", "a b", "c"],
        Some(Duration::from_secs(30)),
        |line| {
            lines.push(line.to_string());
            true
        },
    )
    .expect("answered");
    assert_eq!(lines, vec!["a b c"]);

    let refused =
        request(&path, &["frob"], Some(Duration::from_secs(30)), |_| true).expect_err("refused");
    assert!(
        matches!(&refused, ClientError::Refused(reason) if reason == "no such command"),
        "{refused}"
    );

    let mut streamed = Vec::new();
    request(&path, &["follow"], Some(Duration::from_secs(30)), |line| {
        streamed.push(line.to_string());
        streamed.len() < 2
    })
    .expect("streamed");
    assert_eq!(
        streamed,
        vec!["one", "two"],
        "the client stops when it has enough"
    );

    stop.store(true, Ordering::Relaxed);
    thread.join().expect("server thread");
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

fn bind_error(path: &std::path::Path) -> AdminSocketError {
    let poll = Poll::new().expect("poll");
    AdminServer::bind(path, poll.registry(), Token(0), 1)
        .err()
        .expect("refused")
}

#[test]
fn a_regular_file_at_the_path_is_refused_and_kept() {
    let path = socket_path("exists");
    std::fs::write(&path, b"someone else's").expect("write");
    let error = bind_error(&path);
    assert!(
        matches!(error, AdminSocketError::NotASocket(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("not a socket"), "{error}");
    assert_eq!(std::fs::read(&path).expect("kept"), b"someone else's");
}

#[test]
fn a_stale_socket_left_by_a_crashed_node_is_replaced() {
    let path = socket_path("stale");
    // Binding and dropping a std listener leaves the socket file with nobody listening, as a
    // crashed node does.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale bind"));
    assert!(path.exists(), "the stale socket file is left behind");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = serve(path.clone(), stop.clone());
    let mut answer = Vec::new();
    request(
        &path,
        &["echo", "back"],
        Some(Duration::from_secs(5)),
        |line| {
            answer.push(line.to_string());
            true
        },
    )
    .expect("the new node answers");
    assert_eq!(answer, vec!["back"]);
    stop.store(true, Ordering::Relaxed);
    thread.join().expect("server thread");
}

#[test]
fn a_socket_a_node_answers_on_is_refused() {
    let path = socket_path("live");
    let _live = std::os::unix::net::UnixListener::bind(&path).expect("live bind");
    let error = bind_error(&path);
    assert!(matches!(error, AdminSocketError::InUse(_)), "{error:?}");
    assert!(error.to_string().contains("in use"), "{error}");
    assert!(path.exists(), "the live socket is kept");
}

#[test]
fn no_node_at_the_path_is_a_clear_error() {
    let path = socket_path("absent");
    let error =
        request(&path, &["status"], Some(Duration::from_secs(5)), |_| true).expect_err("nobody");
    assert!(
        error.to_string().starts_with("cannot reach a node at "),
        "{error}"
    );
}
