import sys

from graphseq.cli import main

sys.exit(main())
