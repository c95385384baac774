"""Knowledge at scale (issue 20): build, warm start, live edits and turns at 100 to 20,000 entries.

    python -m bench.scale prime --size 20000          # embed the texts into the cache (slow; resumable)
    python -m bench.scale build --size 5000           # index build: time, embed time, peak RSS
    python -m bench.scale serve --size 5000           # 2 x kefu serve: warm start, edits, loop lag, turns
    python -m bench.scale accuracy --size 100 1000    # the same cases against each size

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
    names, train, test = _intents()
    rng = random.Random(seed)
    pools = {name: rng.sample(train[name], len(train[name])) for name in names}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("prime",))
    parser.add_argument("--size", type=int, nargs="+", default=[1000])
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    for size in args.size:
        if args.stage == "prime":
            prime(size, args.cache_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
