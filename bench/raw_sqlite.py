"""The storage reference: how many durable commits, and rows, a second this disk takes.

The same pragmas as pushgod's store (WAL, synchronous as given, BEGIN IMMEDIATE), N
message-sized rows per transaction (1: the disk's commit rate; more: a group commit, the
most a writer batching N waiting sends can do), for a fixed time, in a process of its
own. Prints one JSON object: {"commits": C, "rows": R, "elapsed_s": S, ...}.

    python bench/raw_sqlite.py DB_PATH --seconds 5 [--synchronous full|normal] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import time

ROW = json.dumps({"title": "bench", "body": "x" * 200, "severity": "normal", "tags": []})


def run(path: str, seconds: float, synchronous: str, rows: int) -> dict[str, object]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=wal")
        db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS rows "
            "(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, channel_id TEXT, data TEXT)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS rows_by_channel ON rows (channel_id, seq)")
        commits = 0
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            db.execute("BEGIN IMMEDIATE")
            for _ in range(rows):
                db.execute(
                    "INSERT INTO rows (id, channel_id, data) VALUES (?, ?, ?)",
                    (secrets.token_hex(16), "C" * 26, ROW),
                )
            db.execute("COMMIT")
            commits += 1
            now = time.perf_counter()
        return {
            "commits": commits,
            "rows": commits * rows,
            "rows_per_commit": rows,
            "elapsed_s": now - start,
            "synchronous": synchronous,
        }
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    parser.add_argument("--rows", type=int, default=1, help="rows per commit")
    args = parser.parse_args()
    print(json.dumps(run(args.db, args.seconds, args.synchronous, args.rows)))


if __name__ == "__main__":
    main()
