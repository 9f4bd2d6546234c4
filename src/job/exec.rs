//! `serve --exec`/`--sh-exec`: a command per connection, relayed both ways, then reaped.

use std::fmt::Display;
use std::sync::PoisonError;

use super::child::{command_stopped_reading, reap_child, until_exit};
use super::serve::{NetRx, NetTx, Shared, report_direction};
use crate::event::Event;
use crate::relay::{Activity, Flow, Meter, OnEof, PairEnd, PairRule, forward_metered, run_pair};
use crate::streams::ChildStream;

/// Relays a connection to and from the command `child` (as spawned), then reaps it: a
/// relay that failed kills it before its stdin closes. Its failure to start, or its exit
/// with a failure status after a clean relay, is recorded in `shared` (a one-client
/// `serve` exits with it). Returns both directions' flows (none if it did not start).
pub(crate) async fn run_child(
    child: crate::streams::Result<ChildStream>,
    net_rx: NetRx,
    net_tx: &mut NetTx,
    shared: &Shared,
    activity: &Activity,
    peer: &(impl Display + Sync + ?Sized),
) -> Vec<Flow> {
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            let why = crate::streams::error::chain(&err);
            // Without -k, serve ends with this as its one error line.
            if shared.settings.keep_open {
                tracing::error!(%peer, "{why}");
            }
            *shared.command_failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
            return Vec::new();
        }
    };
    let command = child.command().to_string();
    let (mut process, mut stdin, stdout) = child.into_parts();
    let (to_meter, from_meter) = (Meter::default(), Meter::default());
    let settings = &shared.settings;
    let half_close = settings.on_eof == OnEof::HalfClose;
    let to_child = async {
        let flow = until_exit(
            &mut process,
            forward_metered(net_rx, &mut stdin, &settings.inbound, activity, true, &to_meter),
            &to_meter,
        )
        .await;
        shared.received.add(flow.bytes_out);
        command_stopped_reading(flow)
    };
    let from_child = async {
        let flow =
            forward_metered(stdout, &mut *net_tx, &settings.outbound, activity, half_close, &from_meter)
                .await;
        shared.sent.add(flow.bytes_out);
        flow
    };
    // No waiting for a cause after a failed write to the client: the other direction
    // feeds the command, which may be blocked writing output that is no longer read.
    let rules =
        [PairRule::default(), PairRule { ends_relay: settings.on_eof == OnEof::Close, ..Default::default() }];
    let ([up, down], end) = run_pair(to_child, from_child, rules, [&to_meter, &from_meter], |_| {}).await;
    let (up, down) = (up.unwrap_or_else(Flow::abandoned), down.unwrap_or_else(Flow::abandoned));
    report_direction(&*shared.report, peer, "peer->command", &up);
    report_direction(&*shared.report, peer, "command->peer", &down);
    // A relay that failed (a reset, a truncated TLS stream) must not look complete to the
    // command: it is killed before its stdin closes, rather than given a clean end of
    // input. Otherwise it gets a moment to exit, then is killed. Either way it is reaped.
    let failed = matches!(end, PairEnd::Failed(_));
    let status = reap_child(&mut process, failed).await;
    drop(stdin);
    tracing::info!(%peer, %command, status = ?status, "command exited");
    if !failed && let Some(status) = status.filter(|s| !s.success()) {
        *shared.command_failed.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(format!("the command {command:?} failed ({status})"));
    }
    shared.report.emit(|| Event::ExecExit {
        peer: peer.to_string(),
        command: command.clone(),
        code: status.and_then(|s| s.code()),
    });
    vec![up, down]
}
