"""Compatibility: `python -m swener.bench` moved to `python -m swener.serve.bench`."""
from swener.serve.bench import main

if __name__ == "__main__":
    main()
