"""The one version of jobwatch: the package metadata (hatch), ``__version__`` and the User-Agent."""

__version__ = "0.1.0.dev0"
