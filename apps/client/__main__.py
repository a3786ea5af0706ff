"""`python -m apps.client` is the `tocsin` command."""

import sys

from .cli import main

sys.exit(main())
