#!/usr/bin/env -S python3 -u
"""A drover task worker in Python (tasks = lines): one integer per line on
stdin, its square per line on stdout.

Run it unbuffered (`python3 -u worker.py`, or PYTHONUNBUFFERED=1): drover
pipelines tasks, so a worker must write each result out at once (or at
least whenever it runs out of input). A worker whose stdout is block-buffered
holds its results back while drover waits for them, and the pool stalls.

    [program:squares]
    command = python3 -u examples/worker.py
    numprocs = 2
    tasks = lines

    drover map -j 2 -- python3 -u examples/worker.py < numbers.txt

stderr is the worker's log; a line that is not an integer gets an
"error: ..." result (in a lines pool every line written is a result)."""

import sys


def main():
    for line in sys.stdin:
        try:
            n = int(line)
        except ValueError:
            print(f"error: not an integer: {line.strip()[:80]}")
            continue
        print(n * n)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
