//! Small defences of pipe (issue 26) kept apart from the relay code: its idle limit and
//! its TLS-terminator default. (serve's stop when stdout is gone, with resets, is the
//! library's: `streamtool::job::broker`.)

/// The default idle limit of a `pipe` with a `tls-listen` endpoint (a TLS terminator):
/// one hour. Without one, silent clients that completed a handshake hold a backend
/// connection each for as long as they like (1,000 of them held 2,012 descriptors), and
/// `--max-conns` then locks everyone else out. stunnel's TIMEOUTidle is 12 hours and
/// ghostunnel sets none; nginx's stream proxy_timeout is 10 minutes. An hour is past what
/// protocols that idle on purpose wait (IMAP IDLE refreshes every 29 minutes, TCP and SSH
/// keepalives are shorter), while it bounds what a silent client holds. docs/security.md.
pub const TLS_TERMINATOR_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A pipe's idle limit: `--idle-timeout`, else an endpoint's `idle-timeout=` (the shorter
/// if both set one), else [`TLS_TERMINATOR_IDLE`] with a `tls-listen` endpoint, else none.
pub fn pipe_idle_timeout(
    flag: Option<streamtool::values::IdleLimit>,
    a: &streamtool::endpoint::Endpoint,
    b: &streamtool::endpoint::Endpoint,
) -> Option<std::time::Duration> {
    use streamtool::endpoint::EndpointKind;
    if let Some(limit) = flag {
        return limit.0;
    }
    let set: Vec<Option<std::time::Duration>> =
        [a, b].iter().filter_map(|e| e.options.idle_timeout.map(|l| l.0)).collect();
    if !set.is_empty() {
        return set.into_iter().flatten().min();
    }
    let terminator = [a, b].iter().any(|e| matches!(e.kind, EndpointKind::TlsListen(_)));
    terminator.then_some(TLS_TERMINATOR_IDLE)
}

/// Runs `work` unless no byte moves through `meters` for `limit`; `None` if that came
/// first. Meters count spliced bytes too, so this holds for every relay path.
pub async fn unless_idle<T>(
    work: impl std::future::Future<Output = T>,
    limit: Option<std::time::Duration>,
    meters: [&streamtool::relay::Meter; 2],
) -> Option<T> {
    let Some(limit) = limit else { return Some(work.await) };
    let idle = async {
        // A sixteenth of the limit (at most a minute): the end comes at most that late, and
        // a thousand idle relays under the hour-long default wake a few times a minute.
        let step =
            (limit / 16).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(60));
        let total = || meters.iter().map(|m| m.get()).sum::<u64>();
        let (mut last, mut since) = (total(), tokio::time::Instant::now());
        loop {
            tokio::time::sleep(step).await;
            let now = total();
            if now != last {
                (last, since) = (now, tokio::time::Instant::now());
            } else if since.elapsed() >= limit {
                return;
            }
        }
    };
    tokio::select! {
        out = work => Some(out),
        () = idle => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamtool::endpoint::Endpoint;
    use streamtool::values::IdleLimit;

    fn endpoint(s: &str) -> Endpoint {
        s.parse().expect("an endpoint")
    }

    #[test]
    fn a_tls_terminator_gets_an_idle_limit_by_default_and_flags_win() {
        let (tls, tcp, stdio) =
            (endpoint("tls-listen:127.0.0.1:0"), endpoint("tcp:127.0.0.1:1"), endpoint("stdio"));
        assert_eq!(pipe_idle_timeout(None, &tls, &tcp), Some(TLS_TERMINATOR_IDLE));
        assert_eq!(pipe_idle_timeout(None, &stdio, &tcp), None);
        let five = std::time::Duration::from_secs(5);
        assert_eq!(pipe_idle_timeout(Some(IdleLimit(None)), &tls, &tcp), None);
        assert_eq!(pipe_idle_timeout(Some(IdleLimit(Some(five))), &stdio, &tcp), Some(five));
        let option = endpoint("tls-listen:127.0.0.1:0,idle-timeout=none");
        assert_eq!(pipe_idle_timeout(None, &option, &tcp), None);
        let option = endpoint("tcp:127.0.0.1:1,idle-timeout=5s");
        assert_eq!(pipe_idle_timeout(None, &tls, &option), Some(five));
    }
}
