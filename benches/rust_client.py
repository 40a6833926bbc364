"""The Rust (tonic) load client of benches/grpc-client, driven from bench_grpc.py: built once
per session with cargo, then run as a subprocess against the benchmark's server, its JSON
report read back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PACKAGE = Path(__file__).with_name("grpc-client")
TARGET_DIR = PACKAGE / "target"
BINARY = TARGET_DIR / "release" / "decision-engine-load"
BUILD_TIMEOUT = 1800  # seconds: a first build on 2 cores takes a few minutes


@dataclass(frozen=True)
class RustClient:
    binary: Path
    build_seconds: float

    def run(
        self,
        port: int,
        rpc: str,
        *,
        mode: str = "closed",
        concurrency: int = 1,
        seconds: float = 3.0,
        rate: float | None = None,
        features: Path | None = None,
    ) -> dict[str, Any]:
        """One run of the client; its report, after checking that no call failed."""
        args = [str(self.binary), "--target", f"127.0.0.1:{port}", "--rpc", rpc, "--mode", mode]
        args += ["--concurrency", str(concurrency), "--duration", str(seconds), "--json"]
        if rate is not None:
            args += ["--rate", str(rate)]
        if features is not None:
            args += ["--features-file", str(features)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode not in (0, 1):  # 1: the report is there, with failed calls
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        report: dict[str, Any] = json.loads(done.stdout)
        if report["errors"]:
            raise AssertionError(f"{rpc} calls failed: {report['errors']} (e.g. {report['error_samples']})")
        return report


def build() -> RustClient | str:
    """Builds the client (a no-op when it is up to date); the reason when it cannot be."""
    cargo = shutil.which("cargo")
    if cargo is None:
        return "cargo not found: the Rust gRPC client (benches/grpc-client) cannot be built"
    command = [cargo, "build", "--release", "--quiet", "--manifest-path", str(PACKAGE / "Cargo.toml")]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env={**os.environ, "CARGO_TARGET_DIR": str(TARGET_DIR)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building benches/grpc-client failed:\n{done.stderr[-4000:]}")
    return RustClient(BINARY, time.perf_counter() - started)


def write_features(path: Path, placement: str, rows: npt.NDArray[np.float32]) -> Path:
    """The client's features file: these profiles (no consents) for `placement`."""
    path.write_text(json.dumps({"placements": [placement], "consents": [], "features": rows.tolist()}))
    return path
