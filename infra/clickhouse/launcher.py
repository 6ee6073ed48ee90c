"""The same launcher as launcher.c, for machines with python3 and without gcc:
   python3 launcher.py LIBCHDB [clickhouse-local arguments...]"""
import ctypes
import signal
import sys

if len(sys.argv) < 2:
    sys.stderr.write("usage: launcher.py LIBCHDB [clickhouse-local arguments...]\n")
    sys.exit(2)
PR_SET_PDEATHSIG = 1
ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
query_cmdline = lib.chdb_query_cmdline
query_cmdline.restype = ctypes.c_void_p
args = [a.encode() for a in sys.argv[1:]]
query_cmdline(len(args), (ctypes.c_char_p * len(args))(*args))
