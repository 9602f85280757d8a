"""Build the oneDNN convolution kernels: ``python -m jaxfuse.conv_build`` (this is that).

    pip install 'jaxfuse[cpu-kernels]'
    python native/build.py [--out FILE] [--dnnl-root DIR] [--cxx g++]
"""

import sys

from jaxfuse.conv_build import main

if __name__ == "__main__":
    sys.exit(main())
