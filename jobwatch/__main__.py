"""``python -m jobwatch``: the command line (see ``jobwatch --help``)."""

from jobwatch._cli import main

if __name__ == "__main__":
    main()
