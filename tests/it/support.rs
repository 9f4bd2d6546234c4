//! Shared test helpers.

use std::future::Future;
use std::time::Duration;

/// How long any single test may take before it is failed as hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `fut` under [`TEST_TIMEOUT`], failing the test if it hangs.
pub async fn timeout<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut).await.expect("the test timed out (hung?)")
}

/// Lets every other task on a current-thread runtime run until it blocks (AnyIO's
/// `wait_all_tasks_blocked`): yields often enough for spawned tasks to reach their await.
pub async fn settle() {
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

/// A current-thread runtime test body, under the test timeout.
pub fn run<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { timeout(fut).await })
}
