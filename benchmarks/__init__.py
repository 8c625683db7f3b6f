"""Speed and memory benchmarks; each script prints a table: what, ours, peer, ratio."""
