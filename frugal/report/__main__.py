import sys

from frugal.report.cli import main

sys.exit(main())
