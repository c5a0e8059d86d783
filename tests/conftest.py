import os
import sys

# the scripts and modules live at the top level, not in a package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
