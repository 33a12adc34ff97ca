"""A logging process for the reliability tests: ``python _child_logger.py DB NAME STEPS MODE``.

MODE "kill": log forever-ish, flushing every 7 steps and printing the last flushed step (the
parent kills it with SIGKILL at a random moment). MODE "finish": log STEPS steps of three
metrics with a tiny flush interval (many transactions: lock contention), then finish.
"""

from __future__ import annotations

import sys

import runcast


def main() -> None:
    db, name, steps, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    run = runcast.init(project="reliability", name=name, db=db, flush_every=0.01)
    print(f"id {run.id}", flush=True)
    for step in range(steps):
        run.log({"a": float(step), "b": 2.0 * step, "c": -1.0 * step}, step=step)
        if mode == "kill" and step % 7 == 6:
            run.flush()
            print(f"flushed {step}", flush=True)  # every step up to here is committed
    run.finish()
    print("done", flush=True)


if __name__ == "__main__":
    main()
