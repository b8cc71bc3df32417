import sys

from skipsr.cli import main

sys.exit(main())
