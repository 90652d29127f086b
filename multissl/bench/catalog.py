"""Benchmarks of the foundation (strings only)."""

BENCHES = {
    "overhead": ("multissl.bench.overhead:main", "multissl trainer vs a bare PyTorch loop: seconds for N steps"),
}
