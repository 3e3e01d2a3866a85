"""Write the example datasets into data/ (or the folder given): python scripts/make_data.py [DEST]."""

import sys

from mmp.project.sample_data import write_sample_data

if __name__ == "__main__":
    for path in write_sample_data(sys.argv[1] if len(sys.argv) > 1 else "data"):
        print(path)
