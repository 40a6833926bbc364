"""Measurements collected during the session, and the ratio table printed at its end."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest


@dataclass(frozen=True)
class Measurement:
    seconds: float  # median seconds per call, from pytest-benchmark
    items: int  # decisions (or profiles) per call
    p50: float | None = None  # seconds, from our own timed loop of single calls
    p99: float | None = None
    label: str = ""
    p95: float | None = None  # seconds, where a bench reports p50 and p95 (test_triggers, test_freshness)

    @property
    def rate(self) -> float:
        return self.items / self.seconds


Recorder = Callable[..., Measurement]  # record(key, items, p50=..., p99=..., label=...)
RESULTS = pytest.StashKey[dict[str, Measurement]]()
LOAD = pytest.StashKey[tuple[float, float, float]]()


def percentiles(durations_ns: npt.NDArray[np.int64]) -> tuple[float, float]:
    """(p50, p99) in seconds."""
    p50, p99 = np.percentile(durations_ns, [50, 99])
    return float(p50) * 1e-9, float(p99) * 1e-9


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _rate(per_second: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {unit} dec/s"
    return f"{per_second:.3g} dec/s"


def _ratio(x: float) -> str:
    return f"{x:.3g}x"


def _single(r: dict[str, Measurement]) -> list[str]:
    engine = r.get("single.engine")
    if engine is None or engine.p50 is None or engine.p99 is None:
        return []
    line = f"single decide, 100 offers  engine p50 {_time(engine.p50)} p99 {_time(engine.p99)}"
    for key, name in (("single.mabwiser", "mabwiser"), ("single.numpy", "numpy beta+argmax")):
        peer = r.get(key)
        if peer is not None and peer.p50 is not None and peer.p99 is not None:
            line += (
                f" | {name} {_time(peer.p50)} (p99 {_time(peer.p99)})"
                f" | ratio {_ratio(peer.p50 / engine.p50)} (p99 {_ratio(peer.p99 / engine.p99)})"
            )
    singles = {k.split(".")[1]: m for k, m in r.items() if k.startswith("single.")}
    loops = ", ".join(f"{name} {m.label}" for name, m in singles.items())
    medians = ", ".join(f"{name} {_time(m.seconds)}" for name, m in singles.items())
    return [line, f"    [p50/p99 from timed loops: {loops}; pytest-benchmark medians: {medians}]"]


def _batch(r: dict[str, Measurement], prefix: str, title: str, peers: str | None = None) -> list[str]:
    """Engine rates under `prefix`, compared with the peers under `peers` (default: `prefix`)."""
    engines = {t: r[f"{prefix}.engine.t{t}"] for t in (1, 2) if f"{prefix}.engine.t{t}" in r}
    if not engines:
        return []
    line = f"{title}  " + ", ".join(f"engine {t}t {_rate(m.rate)}" for t, m in engines.items())
    for peer_key in ("mabwiser", "numpy"):
        peer = r.get(f"{peers or prefix}.{peer_key}")
        if peer is None:
            continue
        ratios = " / ".join(f"{_ratio(m.rate / peer.rate)} ({t}t)" for t, m in engines.items())
        line += f" | {peer.label} {_rate(peer.rate)} | ratio {ratios}"
    sizes = ", ".join(
        f"{k.split('.', 1)[1]}: {m.items:,} per call" for k, m in r.items() if k.startswith(f"{prefix}.")
    )
    return [line, f"    [{sizes}]"]


def _eligibility(r: dict[str, Measurement]) -> list[str]:
    polars = r.get("elig.polars")
    engines = {t: r[f"elig.engine.t{t}"] for t in (1, 2) if f"elig.engine.t{t}" in r}
    if polars is None or not engines:
        return []
    line = "eligibility 1M x 50 rules  " + ", ".join(
        f"engine {t}t {_time(m.seconds)}" for t, m in engines.items()
    )
    ratios = ", ".join(f"{_ratio(polars.seconds / m.seconds)} ({t}t)" for t, m in engines.items())
    lines = [f"{line} | {polars.label} {_time(polars.seconds)} | polars/engine {ratios}"]
    from_rows = r.get("elig.polars_numpy")
    if from_rows is not None:
        ratios = ", ".join(f"{_ratio(from_rows.seconds / m.seconds)} ({t}t)" for t, m in engines.items())
        lines.append(f"  {from_rows.label} {_time(from_rows.seconds)} | polars/engine {ratios}")
    return lines


def _calls(per_second: float) -> str:
    return _rate(per_second).replace("dec/s", "calls/s")


def _grpc_closed_loop(r: dict[str, Measurement], prefix: str, client: str) -> list[str]:
    ping, decide = r.get(f"{prefix}.ping"), r.get(f"{prefix}.decide")
    if ping is None or decide is None:
        return []
    cpu = float(ping.label.split()[0]) / float(decide.label.split()[0])  # "N us server CPU/call"
    return [
        f"gRPC closed loop ({client} client)  Ping {_calls(ping.rate)} ({ping.label}) | Decide "
        f"{_calls(decide.rate)} ({decide.label}) | Decide vs Ping: throughput ratio "
        f"{_ratio(decide.rate / ping.rate)}, CPU-per-call ratio (Ping/Decide) {_ratio(cpu)} "
        "(target >= 0.8)"
    ]


def _grpc(r: dict[str, Measurement]) -> list[str]:
    """bench_grpc.py: Ping vs Decide on one server, latency at a fixed rate, DecideBatch; with
    the Python client, then the Rust one (keys grpc.rust.*) and how the two compare."""
    lines = _grpc_closed_loop(r, "grpc", "Python") + _grpc_closed_loop(r, "grpc.rust", "Rust")
    pairs = [(m, r.get(f"grpc.{m}"), r.get(f"grpc.rust.{m}")) for m in ("ping", "decide")]
    if all(py is not None and rust is not None for _, py, rust in pairs):
        lines.append(
            "    [Rust/Python client throughput: "
            + ", ".join(f"{m} {_ratio(rust.rate / py.rate)}" for m, py, rust in pairs if py and rust)
            + "]"
        )
    for prefix, client in (("grpc", "Python"), ("grpc.rust", "Rust")):
        for key, name in ((f"{prefix}.ping_latency", "Ping"), (f"{prefix}.decide_latency", "Decide")):
            m = r.get(key)
            if m is not None and m.p50 is not None and m.p99 is not None:
                lines.append(
                    f"gRPC {name} at {m.label} ({client} client)  p50 {_time(m.p50)} p99 {_time(m.p99)}"
                    f" ({m.items:,} calls)"
                )
    batches = sorted((m.items, m) for k, m in r.items() if k.startswith("grpc.batch"))
    if batches:
        sizes = ", ".join(f"{n:,} rows {_rate(m.rate)}" for n, m in batches)
        line = f"gRPC DecideBatch (Python client)  {sizes}"
        engine = next((m for k, m in r.items() if k.startswith("grpc.engine_batch")), None)
        if engine is not None:
            line += f" | in-process decide_batch {engine.items:,} rows {_rate(engine.rate)}"
        lines.append(line)
    for key, m in r.items():
        if key.startswith("grpc.rust.batch"):
            rows = int(key.removeprefix("grpc.rust.batch"))
            line = f"gRPC DecideBatch (Rust client, back to back)  {rows:,} rows {_rate(m.rate)}"
            py = r.get(f"grpc.batch{rows}")
            if py is not None:
                line += f" | Python client {_rate(py.rate)} | Rust/Python {_ratio(m.rate / py.rate)}"
            lines.append(line)
    return lines


def summary_lines(r: dict[str, Measurement], load: tuple[float, float, float] | None) -> list[str]:
    lines = [
        "ratios: how many times faster the engine is than the peer (>1: engine faster), same run",
        *_single(r),
        *_batch(r, "batch100", "batch thompson, 100 offers"),
        *_batch(r, "batch100np", "  same, propensities=False", peers="batch100")[:1],
        *_batch(r, "batch5000", "batch thompson, 5000 offers"),
        *_batch(r, "feed3", "batch, 3-slot placement, 100 offers"),
        *_eligibility(r),
        *_grpc(r),
        *_contact(r),
        *_policy_speed(r),
        *_durable(r),
        *_profiles(r),
        *_triggers(r),
        *_freshness(r),
        *_campaign(r),
    ]
    now = os.getloadavg()
    start = f"{load[0]:.2f}" if load else "?"
    lines.append(f"cpus {os.cpu_count()}, load average (1 min) at start {start}, at end {now[0]:.2f}")
    return lines


def _contact(r: dict[str, Measurement]) -> list[str]:
    """Contact policy at decision time, and batch allocation under budgets."""
    lines = []
    base = r.get("contact.anonymous")
    for case in ("anonymous", "empty history", "40 contacts"):
        m = r.get(f"contact.{case}")
        if m is not None and m.p50 is not None and m.p99 is not None:
            extra = (
                f" | {m.p50 / base.p50:.2f}x anonymous" if base and base.p50 and case != "anonymous" else ""
            )
            lines.append(f"decide with contact policy, {case}: p50 {_time(m.p50)} p99 {_time(m.p99)}{extra}")
    plain, allocated = r.get("budget.decide_batch"), r.get("budget.allocate")
    if plain is not None and allocated is not None:
        lines.append(
            f"1M x 100 offers under budgets: decide_batch {plain.rate:,.0f}/s, allocate_budgets "
            f"{allocated.rate:,.0f}/s ({allocated.rate / plain.rate:.2f}x)"
        )
    return lines


POLICY_TARGETS = {"select.lin_ucb": "target >= 400k dec/s per core", "update.lin_ucb": "target >= 10x VW"}


def _policy_speed(r: dict[str, Measurement]) -> list[str]:
    """test_policy_speed.py: our Bandit's select (1 and 2 threads) and update beside the same
    policy in each peer (per core), VW beside the linear policies; then one contextual decision."""
    lines = []
    for kind, unit in (("select", "dec/s"), ("update", "rows/s")):
        for key in r:
            if not (key.startswith(f"policy.{kind}.") and key.endswith(".ours.t1")):
                continue
            policy = key.split(".")[2]
            ours = {
                t: r[f"policy.{kind}.{policy}.ours.t{t}"]
                for t in (1, 2)
                if f"policy.{kind}.{policy}.ours.t{t}" in r
            }
            peers = [
                m for k, m in r.items() if k.startswith(f"policy.{kind}.{policy}.") and ".ours." not in k
            ]
            if policy.startswith("lin_") and f"policy.{kind}.vw" in r:
                peers.append(r[f"policy.{kind}.vw"])
            line = f"bandit {kind} {policy}, 100 arms x 32 features  ours " + ", ".join(
                f"{t}t {_rate(m.rate)}" for t, m in ours.items()
            )
            for peer in peers:
                ratios = " / ".join(f"{_ratio(m.rate / peer.rate)} ({t}t)" for t, m in ours.items())
                line += f" | {peer.label} {_rate(peer.rate)} | ratio {ratios}"
            target = POLICY_TARGETS.get(f"{kind}.{policy}")
            lines.append((line + (f" ({target})" if target else "")).replace("dec/s", unit))
    ours, mabwiser = r.get("policy.single.ours"), r.get("policy.single.mabwiser")
    if ours is not None and ours.p50 is not None and ours.p99 is not None:
        line = (
            f"single contextual decision (lin_ucb, 1 row)  ours p50 {_time(ours.p50)} p99 {_time(ours.p99)}"
        )
        if mabwiser is not None and mabwiser.p50 is not None and mabwiser.p99 is not None:
            line += (
                f" | MABWiser LinUCB predict p50 {_time(mabwiser.p50)} p99 {_time(mabwiser.p99)}"
                f" | ratio {_ratio(mabwiser.p50 / ours.p50)} (p99 {_ratio(mabwiser.p99 / ours.p99)})"
            )
        lines.append(line + " (target p50 < 20 us)")
    return lines


def _durable(r: dict[str, Measurement]) -> list[str]:
    """The embedded store: decision latency and outcome ingestion per fsync policy."""
    lines = []
    memory = r.get("durable.memory.decide")
    memory_rate = r.get("durable.memory.outcomes")
    for mode in ("memory", "never", "interval", "always"):
        d, o = r.get(f"durable.{mode}.decide"), r.get(f"durable.{mode}.outcomes")
        if d is None or d.p50 is None or d.p99 is None or o is None:
            continue
        versus = ""
        if memory and memory.p50 and memory_rate and mode != "memory":
            versus = (
                f" | {d.p50 / memory.p50:.2f}x memory latency, {o.rate / memory_rate.rate:.2f}x its ingestion"
            )
        outcomes = f"{o.rate:,.0f} outcomes/s"
        lines.append(f"store {mode}: decide p50 {_time(d.p50)} p99 {_time(d.p99)}, {outcomes}{versus}")
    return lines


PROFILE_WRITES = [
    *((f"upsert.{form}", "rows/s") for form in ("dicts", "numpy", "arrow")),
    ("track", "events/s"),
    ("grpc.UpsertProfileStream", "rows/s"),
    ("grpc.TrackEvents", "events/s"),
]


def _profiles(r: dict[str, Measurement]) -> list[str]:
    """test_profiles.py: decide by id beside decide with the features in the request (anonymous,
    and with the same profile id, so both apply its contact history), in-process and over gRPC;
    write throughput; bytes per stored profile."""
    lines = []
    for where, prefix in (("in-process", "profiles.decide"), ("gRPC", "profiles.grpc")):
        by_id, sent, sent_id = (r.get(f"{prefix}.{m}") for m in ("by_id", "features", "features_id"))
        if by_id is None or sent is None or sent_id is None:
            continue
        if by_id.p50 is None or sent.p50 is None or sent_id.p50 is None:
            continue
        lines.append(
            f"decide by id, {where} (demo catalog)  p50 {_time(by_id.p50)} | with the features "
            f"{_time(sent.p50)}, with features + profile id {_time(sent_id.p50)} | by id / features "
            f"{_ratio(by_id.p50 / sent.p50)}, by id / features+id {_ratio(by_id.p50 / sent_id.p50)} "
            "(target within 1.3x)"
        )
        cpu = {m: r.get(f"profiles.grpc_cpu.{m}") for m in ("by_id", "features", "features_id")}
        if where == "gRPC" and all(cpu.values()):
            c = {m: v.seconds for m, v in cpu.items() if v is not None}
            lines.append(
                f"    [server CPU per call: by id {_time(c['by_id'])}, features {_time(c['features'])}, "
                f"features + id {_time(c['features_id'])} | by id / features "
                f"{_ratio(c['by_id'] / c['features'])}, by id / features+id "
                f"{_ratio(c['by_id'] / c['features_id'])}]"
            )
    for key, unit in PROFILE_WRITES:
        m = r.get(f"profiles.{key}")
        if m is not None:
            lines.append(f"{key}: {m.rate:,.0f} {unit} ({m.label})")
    memory = r.get("profiles.bytes")
    if memory is not None:
        lines.append(f"embedded profile store: {memory.label} (aim: under 512 bytes)")
    return lines


def _p50_p95(m: Measurement) -> str:
    return f"p50 {_time(m.p50 or m.seconds)} p95 {_time(m.p95 or m.seconds)}"


def _triggers(r: dict[str, Measurement]) -> list[str]:
    """test_triggers.py: event to delivered decision of a zero-delay trigger; timers fired."""
    lines = []
    for key, where in (
        ("triggers.inproc.ticker", "in-process"),
        ("triggers.inproc.direct", "in-process, engine work only"),
        ("triggers.grpc", "over gRPC"),
        ("triggers.grpc.redis", "over gRPC, Redis store"),
    ):
        m = r.get(key)
        if m is not None:
            target = " (target p95 under 100 ms)" if key != "triggers.inproc.direct" else ""
            lines.append(f"trigger event -> delivered decision, {where}  {_p50_p95(m)}{target} [{m.label}]")
    timers = r.get("triggers.timers")
    if timers is not None:
        lines.append(f"trigger timers fired: {timers.rate:,.0f}/s ({timers.label})")
    return lines


def _freshness(r: dict[str, Measurement]) -> list[str]:
    """test_freshness.py: TrackEvents on server A seen on server B over one Redis; decide by id
    beside decide with features on a Redis server; a profile read beside redis-py HGETALL."""
    lines = []
    fresh = r.get("freshness.track_to_read")
    if fresh is not None:
        lines.append(
            f"freshness, TrackEvents on A -> seen on B  {_p50_p95(fresh)} (target p95 under 50 ms) "
            f"[{fresh.label}]"
        )
    by_id, sent = r.get("freshness.decide.by_id"), r.get("freshness.decide.features")
    ping = r.get("freshness.decide.ping")
    if by_id is not None and sent is not None and by_id.p50 and sent.p50:
        lines.append(
            f"decide on a Redis server (gRPC)  by id {_p50_p95(by_id)} | with the features "
            f"{_p50_p95(sent)} | by id / features {_ratio(by_id.p50 / sent.p50)} (target p50 under "
            f"300 us) [{by_id.label}; features: {sent.label.rsplit('; ', 1)[-1]}]"
        )
        if ping is not None and ping.p50:
            lines.append(
                f"    [Ping on the same server {_p50_p95(ping)}: by id p50 - Ping p50 "
                f"{_time(by_id.p50 - ping.p50)}, with the features - Ping {_time(sent.p50 - ping.p50)}]"
            )
    rust, hgetall = r.get("freshness.read.engine"), r.get("freshness.read.hgetall")
    if rust is not None and hgetall is not None and rust.p50 and hgetall.p50:
        lines.append(
            f"profile read from Redis  Engine.profile {_p50_p95(rust)} | redis-py HGETALL "
            f"{_p50_p95(hgetall)} | ratio (HGETALL / Engine.profile) {_ratio(hgetall.p50 / rust.p50)} "
            f"[{rust.label}; {hgetall.label}]"
        )
    return lines


def _campaign(r: dict[str, Measurement]) -> list[str]:
    """test_campaign.py: Parquet to decisions to Parquet, per core, in-process and on Ray."""
    local, on_ray, command = r.get("campaign.in_process"), r.get("campaign.ray.w2"), r.get("campaign.command")
    if local is None or on_ray is None:
        return [] if command is None else [f"campaign {command.items:,} rows, the command: {command.label}"]
    cores = 2  # both runs use the machine's two cores: the engine's threads, or two actors
    line = (
        f"campaign {local.items:,} rows, Parquet to Parquet  "
        f"in-process {local.rate / cores:,.0f} rows/s per core"
        f" | Ray 2 workers {on_ray.rate / cores:,.0f} rows/s per core | Ray/in-process "
        f"{_ratio(on_ray.rate / local.rate)} (target >= 0.8)"
    )
    if command is not None:
        line += f" | the command: {command.label}"
    return [line]
