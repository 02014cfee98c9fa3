"""`python3 -m pyexecd_client`: see cli.py."""

import sys

from .cli import main

sys.exit(main())
