"""Peak memory of one bound pass: max RSS before and after (run under /usr/bin/time -v too).

    python bench/mem_pass.py lstm 32 256 constant 1    # kind T h planes run(0/1)
"""
import sys, resource
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from run import random_model
from popqorn_fast.certify import _problem
kind, T, s, planes, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
w, X = random_model(kind, T, s, 8)
pr = _problem(w, X[0], 2, None, None, planes)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if run:
    pr.run(0.001)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{kind} T={T} h={s} planes={planes} maxrss before pass {before/1024:.1f} MiB, after {after/1024:.1f} MiB, pass peak increase {(after-before)/1024:.1f} MiB")
