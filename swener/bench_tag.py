"""Compatibility: `python -m swener.bench_tag` moved to `python -m swener.serve.bench_tag`."""
from swener.serve.bench_tag import main

if __name__ == "__main__":
    main()
