//! `replay:FILE`: one direction of a connection in a transcript (`--transcript`) played
//! back as a byte stream, with the original pauses between its chunks or as fast as
//! possible; what the other side sends to it is read and dropped.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::dump::{Direction, read_transcript, replay_plan};

/// Which chunks a replay plays, and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayOptions {
    /// `conn=N`: the connection (default: the file's first).
    pub conn: Option<u64>,
    /// `dir=in|out`: the direction played (default `out`: what the recording side sent).
    pub dir: Option<Direction>,
    /// `timing=fast`: no pauses (default `timing=original`).
    pub fast: bool,
}

/// One chunk and the pause before it.
pub type Plan = Vec<(Duration, Vec<u8>)>;

/// Reads the transcript at `path` and picks what `options` ask for.
///
/// # Errors
/// One line naming the file and what is wrong with it (its line, for a bad record).
pub fn load(path: &Path, options: &ReplayOptions) -> Result<Plan, String> {
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read transcript {name}: {e}"))?;
    let records = read_transcript(std::io::BufReader::new(file)).map_err(|e| format!("{name}: {e}"))?;
    replay_plan(&records, options.conn, options.dir.unwrap_or(Direction::Out))
        .map_err(|e| format!("{name}: {e}"))
}

/// The plan played as a stream: its chunks in order (after their pauses unless `fast`),
/// then the end of the stream.
pub fn play(plan: Plan, fast: bool) -> impl AsyncRead + Send + Unpin + 'static {
    let size = plan.iter().map(|(_, data)| data.len()).max().unwrap_or(1).clamp(1, 1 << 20);
    let (mut tx, rx) = tokio::io::duplex(size);
    tokio::spawn(async move {
        for (pause, data) in plan {
            if !fast && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if tx.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = tx.shutdown().await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The out direction of the first connection, its pauses kept (at least their sum).
    #[tokio::test]
    async fn a_transcript_plays_back_one_direction_with_its_pauses() {
        let dir = std::env::temp_dir().join(format!("st-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let lines = [
            r#"{"time":"2026-01-01T00:00:00.000000Z","conn":1,"event":"connect","peer":"a","local":"b"}"#,
            r#"{"time":"2026-01-01T00:00:00.100000Z","conn":1,"dir":"out","len":3,"data":"b25l"}"#,
            r#"{"time":"2026-01-01T00:00:00.150000Z","conn":1,"dir":"in","len":3,"data":"dHdv"}"#,
            r#"{"time":"2026-01-01T00:00:00.300000Z","conn":1,"dir":"out","len":5,"data":"dGhyZWU="}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let plan = load(&path, &ReplayOptions::default()).unwrap();
        assert_eq!(plan.len(), 2);
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        play(plan, false).read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"onethree");
        assert!(started.elapsed() >= Duration::from_millis(290), "{:?}", started.elapsed());
        let back = load(&path, &ReplayOptions { dir: Some(Direction::In), ..Default::default() }).unwrap();
        assert_eq!(back, vec![(Duration::from_millis(150), b"two".to_vec())]);
        std::fs::write(&path, "{\"time\":1}\n").unwrap();
        let err = load(&path, &ReplayOptions::default()).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
