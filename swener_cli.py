"""Console entry point: keeps `swener --help` fast by not importing flair up front."""
import os


def main() -> None:
    """Run the `swener` command line without registering the Flair classes at import."""
    os.environ.setdefault("SWENER_LAZY", "1")
    from swener.cli import main as cli_main

    cli_main()
