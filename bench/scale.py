"""Knowledge at scale (issue 20): build, warm start, live edits and turns at 100 to 20,000 entries.

    python -m bench.scale prime --size 20000          # embed the texts into the cache (slow; resumable)
    python -m bench.scale build --size 5000           # index build: time, embed time, peak RSS
    python -m bench.scale serve --size 5000 [--stand-in]  # 2 x kefu serve: warm start, edits, loop lag, turns
    python -m bench.scale accuracy --size 100 1000    # the same cases against each size
    python -m bench.scale edit --size 1000            # CPU of a reload's decode+diff and of one edit
    python -m bench.scale edit-arithmetic --size 20000  # the same at 20,000 on random vectors (no fit)
    python -m bench.scale save --size 5000 --redis URL  # an admin's save: wall / CPU / loop stall (no index)

Run the in-process stages with OPENBLAS_NUM_THREADS=1, as kefu serve's workers run.

The knowledge bases are synthetic but made of real customer phrasings: entry = (intent, branch),
an intent of Banking77 or CLINC150 (227 in all) asked about one of 90 city branches ("Tokyo
branch: I am still waiting on my card?"), 3-10 training phrasings each, answer one line.  Sizes
are nested — the first 100 entries of every size are the same (branch 0, 100 intents) — and the
cases ask those 100 entries in the intents' *test* phrasings, so every size answers the same
questions and only the haystack grows.  The cache folder is ``KEFU_BENCH_CACHE`` /
``--cache-dir`` (vectors reused across runs); Redis is ``--redis`` (only Kefu's keys are wiped).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

from knowledge.schema import Entry, KnowledgeBase, build_kb

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KEFU_BENCH_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("KEFU_BENCH_CACHE", Path.home() / ".cache" / "kefu-bench"))
SIZES = (100, 1000, 5000, 20000)
BRANCHES = (
    "Tokyo", "Paris", "Cairo", "Lima", "Oslo", "Nairobi", "Sydney", "Toronto", "Mumbai", "Berlin",
    "Madrid", "Lisbon", "Dublin", "Prague", "Vienna", "Warsaw", "Athens", "Rome", "Milan", "Zurich",
    "Geneva", "Brussels", "Amsterdam", "Copenhagen", "Stockholm", "Helsinki", "Reykjavik", "Moscow", "Kyiv",
    "Istanbul", "Tehran", "Dubai", "Doha", "Riyadh", "Karachi", "Delhi", "Dhaka", "Kathmandu", "Colombo",
    "Bangkok", "Hanoi", "Manila", "Jakarta", "Singapore", "Seoul", "Beijing", "Shanghai", "Taipei",
    "Osaka", "Auckland", "Perth", "Honolulu", "Anchorage", "Vancouver", "Seattle", "Denver", "Chicago",
    "Boston", "Miami", "Havana", "Bogota", "Quito", "Santiago", "Montevideo", "Caracas", "Panama",
    "Mexico City", "Dallas", "Phoenix", "Atlanta", "Detroit", "Montreal", "Lagos", "Accra", "Dakar",
    "Casablanca", "Tunis", "Algiers", "Khartoum", "Addis Ababa", "Kampala", "Luanda", "Harare",
    "Johannesburg", "Cape Town", "Antananarivo", "Edinburgh", "Glasgow", "Cardiff", "Belfast",
)


def _intents() -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """Intent names (Banking77 and CLINC150 interleaved) with their train and test phrasings."""
    train: dict[str, list[str]] = defaultdict(list)
    test: dict[str, list[str]] = defaultdict(list)
    public = DATA / "public"
    with open(public / "banking77" / "train.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            train[f"b-{row['category']}"].append(row["text"].strip())
    with open(public / "banking77" / "test.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            test[f"b-{row['category']}"].append(row["text"].strip())
    clinc = json.loads((public / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    for text, label in clinc["train"]:
        train[f"c-{label}"].append(text.strip())
    for text, label in clinc["test"]:
        test[f"c-{label}"].append(text.strip())
    banking = sorted(k for k in train if k.startswith("b-"))
    other = sorted(k for k in train if k.startswith("c-"))
    names = [name for pair in zip(banking, other, strict=False) for name in pair]
    names += other[len(banking):]
    return names, train, test


def generate(size: int, seed: int = 0) -> tuple[KnowledgeBase, list[tuple[str, str]]]:
    """The first ``size`` entries of the 20,000-entry knowledge base, and the cases (the same
    300 at every size: three test phrasings of each of the first 100 entries)."""
    from knowledge.schema import normalized_question

    names, train, test = _intents()
    rng = random.Random(seed)
    owner: dict[str, str] = {}  # a phrasing two intents share (a few do) stays with the first
    for name in names:
        for q in train[name]:
            owner.setdefault(normalized_question(q), name)
    pools = {name: rng.sample(kept, len(kept)) for name in names
             for kept in [list(dict.fromkeys(q for q in train[name] if owner[normalized_question(q)] == name))]}
    cursor = dict.fromkeys(names, 0)
    entries: list[Entry] = []
    for number in range(size):
        branch, name = BRANCHES[number // len(names)], names[number % len(names)]
        count = rng.randint(3, 10)
        pool, start = pools[name], cursor[name]
        picked = [pool[(start + i) % len(pool)] for i in range(count)]
        cursor[name] = start + count
        questions = tuple(dict.fromkeys(f"{branch} branch: {q}" for q in picked))
        entries.append(Entry(f"{name}@{branch.lower().replace(' ', '-')}", questions,
                             {"en": f"{branch} branch: [answer for {name[2:]}]"}))
    cases = [(f"{BRANCHES[0]} branch: {text}", entries[i].id)
             for i in range(min(100, size)) for text in test[names[i]][:3]]
    return build_kb(entries), cases


def texts_of(kb: KnowledgeBase) -> int:
    return sum(len(e.questions) + len(e.answer) for e in kb.entries)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss, KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prime(size: int, cache_dir: Path, chunk: int = 2048) -> None:
    """Embed every text of the ``size`` knowledge base into the cache, a chunk at a time (an
    interrupted run resumes where it stopped); prints the embedding rate."""
    from knowledge.embeddings import build_threads, get_embedder
    from knowledge.index_cache import EmbeddingCache

    kb, _ = generate(size)
    model = get_embedder()
    cache = EmbeddingCache(cache_dir, model.model_id)
    texts = list(dict.fromkeys(t for e in kb.entries for t in (*e.questions, *e.answer.values())))
    todo = [texts[i] for i in cache.get(texts)[1]]
    print(f"{len(texts)} texts, {len(todo)} not cached yet", flush=True)
    begun, done = time.perf_counter(), 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        cache.put(part, model.embed_batch(part, threads=build_threads()))
        cache.save()
        done += len(part)
        rate = (time.perf_counter() - begun) / done * 1000
        print(f"{done}/{len(todo)} embedded, {rate:.1f} ms/text (load {os.getloadavg()[0]:.1f})", flush=True)


def fill(size: int, cache_dir: Path) -> None:
    """Stand-in vectors for every text of the ``size`` knowledge base, for the sizes this box
    cannot embed in a session (20,000 entries = 150,000 texts = ~85 CPU-minutes of e5): an
    intent direction plus a branch direction plus per-text noise, unit length, stored under the
    real model's id so ``kefu serve`` takes them from the cache.  Build, memory, edit and turn
    costs do not depend on what the vectors say; accuracy on them means nothing and is not reported."""
    import numpy as np

    from knowledge.embeddings import get_embedder
    from knowledge.index_cache import EmbeddingCache

    kb, _ = generate(size)
    cache = EmbeddingCache(cache_dir, get_embedder().model_id)
    rng = np.random.default_rng(1)
    names = sorted({e.id.split("@")[0] for e in kb.entries})
    intent = dict(zip(names, rng.standard_normal((len(names), 384)), strict=True))
    branch = dict(zip(BRANCHES, rng.standard_normal((len(BRANCHES), 384)), strict=True))
    texts, rows = [], []
    for e in kb.entries:
        name, place = e.id.split("@")[0], next(b for b in BRANCHES if e.id.endswith("@" + b.lower().replace(" ", "-")))
        for text in (*e.questions, *e.answer.values()):
            texts.append(text)
            rows.append(intent[name] + 0.6 * branch[place] + 0.5 * rng.standard_normal(384))
    vectors = np.asarray(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    missing = cache.get(texts)[1]
    cache.put([texts[i] for i in missing], vectors[missing])
    cache.save()
    print(f"{len(missing)} stand-in vectors written ({len(texts)} texts)")


def build(size: int, cache_dir: Path, stand_in: bool = False) -> dict[str, float]:
    """One index build as ``kefu serve`` does it (built-in examples, calibration), in a fresh
    process so its peak RSS is its own; prints and returns the numbers."""
    import subprocess

    code = (f"import json, time, os; from bench.scale import build_here; "
            f"print(json.dumps(build_here({size}, {str(cache_dir)!r}, {stand_in!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"size": size, **result}), flush=True)
    return result


def build_here(size: int, cache_dir: str, stand_in: bool = False) -> dict[str, float]:
    """``stand_in``: without the built-in example classes, as ``serve --stand-in`` serves it."""
    from knowledge.builtin import builtin_examples
    from knowledge.search import build_retriever

    kb, _ = generate(size)
    begun, cpu = time.perf_counter(), time.process_time()
    retriever = build_retriever(kb, cache_dir=Path(cache_dir), examples=None if stand_in else builtin_examples(),
                                calibrate=True)
    return {"entries": len(retriever), "texts": texts_of(kb), "embedded": retriever.embedded_texts,
            "seconds": round(time.perf_counter() - begun, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_rss_mb()), "load": round(os.getloadavg()[0], 1)}


def embed_rate(samples: int = 128) -> float:
    """CPU ms per text of the model on this box (``build_threads`` cores), on fresh texts."""
    from knowledge.embeddings import build_threads, get_embedder

    model = get_embedder()
    kb, _ = generate(300)
    texts = [f"{q} ({i})" for i, q in enumerate(q for e in kb.entries for q in e.questions)][:samples]
    model.embed_batch(texts[:4])
    cpu = time.process_time()
    model.embed_batch(texts, threads=build_threads())
    return (time.process_time() - cpu) / len(texts) * 1000


def parse_speed(size: int) -> None:
    """Seconds to parse the ``size`` knowledge base's YAML (``kefu`` start, ``kb import``)."""
    from knowledge.schema import dump_kb, parse_kb

    kb, _ = generate(size)
    text = dump_kb(kb)
    begun = time.process_time()
    parsed = parse_kb(text)
    assert parsed == kb
    print(f"{size} entries: YAML ({len(text) / 1e6:.1f} MB) parsed in {time.process_time() - begun:.2f} CPU s")


def accuracy(size: int, cache_dir: Path) -> dict[str, float]:
    """The 300 cases against the ``size`` knowledge base, decided as ``kefu`` decides (FaqMatcher)."""
    from bot.config import ThresholdConfig
    from intents.faq import FaqMatcher
    from knowledge.builtin import builtin_examples
    from knowledge.search import build_retriever

    kb, cases = generate(size)
    retriever = build_retriever(kb, cache_dir=cache_dir, examples=builtin_examples(), calibrate=True)
    matcher = FaqMatcher(retriever, ThresholdConfig())
    results = [(matcher.match(text), expected) for text, expected in cases]
    n = len(results)
    out = {"size": size, "cases": n,
           "top1": round(sum(m.candidates[0].entry_id == e for m, e in results if m.candidates) / n, 3),
           "answered_right": round(sum(m.outcome == "answer" and m.entry_id == e for m, e in results) / n, 3),
           "answered_wrong": round(sum(m.outcome == "answer" and m.entry_id != e for m, e in results) / n, 3)}
    print(json.dumps(out), flush=True)
    return out


def edit_cost(size: int, cache_dir: Path, edits: int) -> None:
    """CPU seconds of the two halves of a worker's reload at ``size`` entries, in-process (robust
    to the box's load, unlike wall time): decoding and diffing the stored entries, and patching
    the index for one edited entry (its new phrasing embedded)."""
    from knowledge.builtin import builtin_examples
    from knowledge.reload import _compared
    from knowledge.repository import encode
    from knowledge.search import build_retriever

    kb, _ = generate(size)
    raw = {e.id: encode(e, i) for i, e in enumerate(kb.entries)}
    cpu = time.process_time()
    compared = _compared(kb, raw, 2)
    assert compared is not None and compared[1:] == ([], [])
    diff = time.process_time() - cpu
    retriever = build_retriever(kb, cache_dir=cache_dir, examples=builtin_examples(), calibrate=True)
    costs = []
    for n in range(edits):
        entry = kb.entries[(n * 7919) % len(kb)]
        edited = Entry(entry.id, (*entry.questions, f"{entry.questions[0]} - reworded {n} {time.time()}"), entry.answer)
        cpu, begun = time.process_time(), time.perf_counter()
        retriever = retriever.updated([edited], [])
        costs.append((time.process_time() - cpu, time.perf_counter() - begun))
        assert retriever.search(edited.questions[-1])[0].entry_id == entry.id
    print(json.dumps({"size": size, "decode_and_diff_cpu_s": round(diff, 2),
                      "edit_cpu_s": [round(c, 2) for c, _ in costs], "edit_wall_s": [round(w, 2) for _, w in costs],
                      "load": round(os.getloadavg()[0], 1)}), flush=True)


def edit_without_fit(size: int, edits: int) -> None:
    """The arithmetic of an edit and of a search at ``size`` entries without the hour of
    embedding and the minutes of a full fit: random unit vectors and a random classifier of the
    real shapes (20,000 labels, 130,000 searchable rows); the query is a fake embedder's."""
    import numpy as np

    from knowledge import search
    from tests.knowledge.test_search import CountingEmbedder

    kb, _ = generate(size)
    rng = np.random.default_rng(0)
    retriever = search.Retriever([], embedder=CountingEmbedder(), cache=None)
    items = {e.id: search._items_of(e) for e in kb.entries}
    vectors = {}
    for label, its in items.items():
        v = rng.standard_normal((len(its), 384)).astype(np.float32)
        vectors[label] = v / np.linalg.norm(v, axis=1, keepdims=True)
    labels = tuple(items)
    rows: list[search._Item] = []
    starts = []
    for label in labels:
        starts.append(len(rows))
        rows.extend(i for i in items[label] if i.searchable)
    matrix = np.vstack([vectors[lb][[i for i, it in enumerate(items[lb]) if it.searchable]] for lb in labels])
    clf = search._Classifier(rng.standard_normal((len(labels), 384)).astype(np.float32),
                             np.zeros(len(labels), np.float32))
    retriever._items, retriever._vectors = items, vectors
    retriever._index = search._Index(labels, tuple(rows), np.array(starts, dtype=np.int64), len(labels), matrix,
                                     None, clf)
    costs = []
    for n in range(edits):
        e = kb.entries[(n * 4999) % len(kb)]
        cpu = time.process_time()
        retriever.apply([Entry(e.id, (*e.questions, f"reworded {n}"), e.answer)], [])
        costs.append(round(time.process_time() - cpu, 2))
    cpu = time.process_time()
    for t in range(20):
        retriever.analyze(f"Tokyo branch: a new question {t}")
    print(json.dumps({"size": size, "rows": len(rows), "edit_cpu_s": costs,
                      "search_cpu_ms": round((time.process_time() - cpu) / 20 * 1000, 1),
                      "load": round(os.getloadavg()[0], 1)}), flush=True)


async def loop_lateness(worst: list[float], tick: float = 0.005) -> None:
    """Until cancelled: ``worst[0]`` = the most this event loop woke late for a ``tick`` sleep."""
    import asyncio

    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + tick
        await asyncio.sleep(tick)
        worst[0] = max(worst[0], loop.time() - due)


def save_cost(size: int, redis_url: str, edits: int) -> None:
    """An admin's save of one entry (``KnowledgeService.save``, what the console's Save button
    runs, before any worker reloads) against a ``size``-entry knowledge base in real Redis:
    wall and CPU seconds, and the worst lateness of a 5 ms loop probe beside it.  Edits
    alternate between a heap left as it is and one settled as a ``kefu serve`` worker's is
    after loading (:func:`bot.workers.settle_heap`), so both are measured side by side."""
    import asyncio
    import gc

    import redis.asyncio as aioredis

    from knowledge.service import KnowledgeService

    kb, _ = generate(size)

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            await client.flushdb()
            service = KnowledgeService(client)
            await service.seed(kb)
            results: dict[str, dict[str, list[float]]] = {}
            for n in range(edits * 2):
                settled = n % 2 == 1  # (no gc.collect() first: it would spare the save a full collection)
                if settled:
                    gc.freeze()
                entry = kb.entries[(n * 4999) % len(kb)]
                raw = {**entry.to_json(), "questions": [*entry.questions, f"reworded question number {n}"]}
                worst = [0.0]
                prober = asyncio.create_task(loop_lateness(worst))
                wall, cpu = time.perf_counter(), time.process_time()
                await service.save(raw, "bench")
                row = results.setdefault("heap settled" if settled else "heap as is", {"wall_s": [], "cpu_s": [],
                                                                                       "loop_lag_ms": []})
                row["wall_s"].append(round(time.perf_counter() - wall, 3))
                row["cpu_s"].append(round(time.process_time() - cpu, 3))
                prober.cancel()
                row["loop_lag_ms"].append(round(worst[0] * 1000, 1))
                gc.unfreeze()
            print(json.dumps({"size": size, "save": results, "load": round(os.getloadavg()[0], 1)}), flush=True)
        finally:
            await client.flushdb()
            await client.aclose()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("prime", "fill", "build", "rate", "parse", "accuracy", "edit", "edit-arithmetic", "save", "serve"))
    parser.add_argument("--size", type=int, nargs="+", default=[1000])
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--edits", type=int, default=6)
    parser.add_argument("--stand-in", action="store_true",
                        help="serve: the cache holds `fill`'s stand-in vectors (built-in example classes left out)")
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args(argv)
    if args.stage == "rate":
        print(f"embedding: {embed_rate():.1f} CPU ms per text (load {os.getloadavg()[0]:.1f})")
        return 0
    for size in args.size:
        if args.stage == "prime":
            prime(size, args.cache_dir)
        elif args.stage == "fill":
            fill(size, args.cache_dir)
        elif args.stage == "build":
            build(size, args.cache_dir, args.stand_in)
        elif args.stage == "parse":
            parse_speed(size)
        elif args.stage == "edit":
            edit_cost(size, args.cache_dir, args.edits)
        elif args.stage == "edit-arithmetic":
            edit_without_fit(size, args.edits)
        elif args.stage == "save":
            save_cost(size, args.redis, args.edits)
        elif args.stage == "accuracy":
            accuracy(size, args.cache_dir)
        else:
            from bench.scale_serve import serve

            serve(size, args.cache_dir, args.redis, args.edits, args.turns, stand_in=args.stand_in)
    return 0


if __name__ == "__main__":
    sys.exit(main())
