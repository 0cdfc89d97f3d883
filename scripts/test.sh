#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Idempotent: installs what the tests
# need (Node 22, npm servers and clients, the Python MCP SDK, podman, a local test image) into
# .interop/ and the system, builds everything, runs the unit and integration tests, then the
# interoperability tests with real clients, real servers and a real container.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (debug, all binaries)"
cargo build --workspace --locked

step "install test dependencies (skipped when present)"
scripts/setup-interop.sh target/debug/fake

step "unit and integration tests"
cargo test --workspace --locked

step "interoperability tests (conformance suite, Python SDK, Inspector, podman)"
tests/interop/run.sh target/debug
