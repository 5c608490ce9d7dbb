"""``python -m gatewayd`` runs the ``clawgress`` command line."""

from gatewayd.cli import main

main()
