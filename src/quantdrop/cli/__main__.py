"""`python -m quantdrop.cli VERB ...`, the same as the `quantdrop` command."""

import sys

from quantdrop.cli import main

sys.exit(main())
