import sys

from gan_diffusion.cli import main

sys.exit(main())
