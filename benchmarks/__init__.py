"""Scripts that print measurements (not tests). A package so the scripts share helpers
(`_bench`, `idiomatic`, `stock`) by relative import; run each from the repository root as a
module: `python -m benchmarks.<name> [options]` (docs/benchmarks.md)."""
