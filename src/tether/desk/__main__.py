"""``python -m tether.desk`` runs the ``tether-desk`` command line."""

from .cli import main

main()
