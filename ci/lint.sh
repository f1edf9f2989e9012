#!/usr/bin/env bash
# Formatting and clippy (all targets, warnings are errors) for every crate.
set -euo pipefail
cargo fmt --all --check
(cd core/fuzz && cargo fmt --check)
(cd firmware && cargo fmt --check)
(cd firmware/fuzz && cargo fmt --check)
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd firmware && cargo clippy --release --locked -- -D warnings)
# The firmware's library crates, with their host tests.
for crate in lan9118 cloud-tls flash-journal; do
  (cd "firmware/$crate" && cargo clippy --all-targets --locked -- -D warnings)
done
