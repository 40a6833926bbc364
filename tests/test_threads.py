"""One Engine shared by many Python threads: decisions, batches and outcomes interleave freely."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from decision_engine import OutcomeAlreadyReportedError, UnknownDecisionError

WORKERS = 8
DECISIONS_PER_WORKER = 2000
BATCHES = 12
BATCH_ROWS = 300


def learned(engine, placement, prior):
    """offer -> (successes, failures) seen by the policy, from alpha/beta minus the prior."""
    return {a.offer_id: (a.alpha - prior[0], a.beta - prior[1]) for a in engine.policy_state(placement)}


def test_concurrent_decide_batch_and_report(engine, row, now):
    profile = row()
    profiles = np.stack([row(age=a) for a in np.random.default_rng(0).integers(18, 70, BATCH_ROWS)])
    start = threading.Barrier(WORKERS + 2)

    def worker(index):
        rng = np.random.default_rng(index)
        ids, outcomes = [], Counter()
        start.wait()
        for i in range(DECISIONS_PER_WORKER):
            placement = "feed" if i % 4 == 0 else "hero"
            d = engine.decide(placement, profile, consents=["email"], now=now)
            ids.append(d.decision_id)
            for offer_id in d.offer_ids:
                reward = int(rng.integers(0, 2))
                engine.report_outcome(d.decision_id, float(reward), offer_id if placement == "feed" else None)
                outcomes[placement, offer_id, reward] += 1
        return ids, outcomes

    def batcher(placement):
        ids, outcomes = [], Counter()
        consents = np.ones((BATCH_ROWS, 3), bool)
        start.wait()
        for k in range(BATCHES):
            b = engine.decide_batch(placement, profiles, consents=consents, now=now, threads=1 + k % 2)
            ids.extend(int(i) for i in b.decision_ids)
            for decision_id, offer_ids in zip(b.decision_ids, engine.offer_id_array(b.offers), strict=True):
                for offer_id in filter(None, offer_ids):
                    engine.report_outcome(decision_id, 1.0, offer_id)
                    outcomes[placement, offer_id, 1] += 1
        return ids, outcomes

    with ThreadPoolExecutor(WORKERS + 2) as pool:
        futures = [pool.submit(worker, i) for i in range(WORKERS)]
        futures += [pool.submit(batcher, p) for p in ("hero", "feed")]
        results = [f.result() for f in futures]  # re-raises any exception from a thread

    all_ids = [i for ids, _ in results for i in ids]
    assert len(all_ids) == WORKERS * DECISIONS_PER_WORKER + 2 * BATCHES * BATCH_ROWS
    assert len(set(all_ids)) == len(all_ids), "decision ids are unique across threads"
    outcomes = sum((c for _, c in results), Counter())
    assert engine.pending_decisions == 0

    reported = 0
    for placement in ("hero", "feed"):
        arms = learned(engine, placement, (1.0, 1.0))
        for offer_id, (successes, failures) in arms.items():
            assert successes == outcomes[placement, offer_id, 1], (placement, offer_id)
            assert failures == outcomes[placement, offer_id, 0], (placement, offer_id)
        reported += sum(s + f for s, f in arms.values())
    assert reported == sum(outcomes.values())
    assert reported > WORKERS * DECISIONS_PER_WORKER


def test_racing_reports_are_each_accepted_exactly_once(engine, row, now):
    profile = row()
    single = [engine.decide("hero", profile, now=now) for _ in range(1500)]
    multi = [engine.decide("feed", profile, consents=["email"], now=now) for _ in range(300)]
    batch = engine.decide_batch("hero", np.stack([profile] * 500), now=now)
    targets = [(d.decision_id, d.offer_ids[0]) for d in single]
    targets += [(d.decision_id, o) for d in multi for o in d.offer_ids]
    batch_offers = engine.offer_id_array(batch.offers[:, 0])
    targets += [(int(i), o) for i, o in zip(batch.decision_ids, batch_offers, strict=True)]
    assert len(targets) == 1500 + 900 + 500
    start = threading.Barrier(WORKERS)

    def racer(index):
        order = np.random.default_rng(index).permutation(len(targets))
        accepted, refused = [], Counter()
        start.wait()
        for k in order:
            decision_id, offer_id = targets[k]
            try:
                engine.report_outcome(decision_id, 1.0, offer_id)
            except (UnknownDecisionError, OutcomeAlreadyReportedError) as exc:
                refused[type(exc)] += 1
            else:
                accepted.append((decision_id, offer_id))
        return accepted, refused

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(racer, range(WORKERS)))

    accepted = Counter(t for a, _ in results for t in a)
    assert accepted == Counter(targets), "every outcome accepted exactly once"
    refused = sum((r for _, r in results), Counter())
    assert sum(refused.values()) == (WORKERS - 1) * len(targets)
    assert engine.pending_decisions == 0

    multi_ids = {d.decision_id for d in multi}
    shown = Counter(("feed" if d in multi_ids else "hero", o) for d, o in targets)
    for placement in ("hero", "feed"):
        for offer_id, (successes, failures) in learned(engine, placement, (1.0, 1.0)).items():
            assert (successes, failures) == (shown[placement, offer_id], 0), (placement, offer_id)
