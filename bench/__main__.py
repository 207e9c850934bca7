"""`python -m bench`: run every scenario and write the results (see bench/run.py)."""

from bench.run import main

main()
