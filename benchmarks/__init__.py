"""jobwatch's benchmark harness: client CPU per poll against a loopback simulator.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``); see ``benchmarks/README.md``.
"""
