#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 600), JOBS at a time (default 2),
# then merges inputs that add coverage into the committed corpus (fuzz/corpus/TARGET).
# A crash leaves its input in fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/
# once fixed, and `cargo test` replays it from then on.
#
#   bash fuzz/run.sh            # all targets, 10 minutes each
#   bash fuzz/run.sh 60 tls_peer pem
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(endpoint option_values receive_until framing text_decoder pem tls_peer proxy_reply starttls_reply proxy_header)
fi
jobs=${JOBS:-2}
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
mkdir -p logs
run_one() {
    local t=$1
    mkdir -p "corpus-run/$t" "corpus/$t"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
    if cargo +nightly fuzz run -O "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$t.log" 2>&1; then
        echo "$t: ok, $(grep -E '^stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}') executions in ${seconds}s"
    else
        echo "$t: FAILED, see fuzz/logs/$t.log and fuzz/artifacts/$t/"
        return 1
    fi
    cargo +nightly fuzz run -O "$t" -- -merge=1 "corpus/$t" "corpus-run/$t" >"logs/$t.merge.log" 2>&1
}
status=0
pids=()
for t in "${targets[@]}"; do
    run_one "$t" & pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
