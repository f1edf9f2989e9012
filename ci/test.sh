#!/usr/bin/env bash
# The project's test command (the README gives the same one).
set -euo pipefail
cargo test --workspace --locked
