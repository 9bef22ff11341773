//! The loopback redirect of an authorization with a user: its URI, and the listener that waits for
//! the browser to bring the authorization server's answer back.

use std::time::Duration;

use url::Url;

use super::{OAuthError, protocol};

/// The redirect URI's port when `oauth.redirectPort` is 0 in a headless flow: the URI must name
/// one, though nothing listens there (the redirect is read from the authorization endpoint's answer).
const DEFAULT_REDIRECT_PORT: u16 = 8976;

/// The loopback redirect URI on `port` (0: the default port).
pub(super) fn redirect_uri(port: u16) -> String {
    format!(
        "http://127.0.0.1:{}/callback",
        if port == 0 {
            DEFAULT_REDIRECT_PORT
        } else {
            port
        }
    )
}

/// How long the interactive authorization waits for the browser's redirect.
const USER_WAIT: Duration = Duration::from_secs(300);

/// Waits for the authorization server's redirect on the loopback listener; the URL it carried.
pub(super) async fn receive_redirect(
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
) -> Result<Url, OAuthError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = Url::parse(redirect_uri).map_err(|e| protocol(e.to_string()))?;
    let wait = async {
        loop {
            let (mut stream, _) = listener
                .accept()
                .await
                .map_err(|e| protocol(format!("the redirect listener failed: {e}")))?;
            let mut buffer = vec![0u8; 8192];
            let mut read = 0;
            while read < buffer.len() {
                match stream.read(&mut buffer[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buffer[..read]);
            let target = head
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("GET "))
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("");
            let Ok(url) = base.join(target) else {
                continue;
            };
            if url.path() != base.path() {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let body = "Authorization received; you can close this window.";
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return Ok(url);
        }
    };
    tokio::time::timeout(USER_WAIT, wait)
        .await
        .map_err(|_| protocol(format!("no authorization within {}s", USER_WAIT.as_secs())))?
}
