"""Runs a Python script as __main__ and, at exit, writes the process's peak resident set.

    python launcher.py RSS_FILE SCRIPT [ARGS...]

The peak is read from /proc/self/status VmHWM (the high-water mark of this
process's own memory map); ``ru_maxrss`` of a child is useless here, since
Linux carries the parent's resident size at fork into the child's maxrss.
"""
import atexit
import os
import runpy
import sys


def peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


out, script = sys.argv[1], sys.argv[2]


def report():
    with open(out, "w") as f:
        f.write(str(peak_rss()))


atexit.register(report)
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
runpy.run_path(script, run_name="__main__")
